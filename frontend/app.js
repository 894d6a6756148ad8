// The front page: sign in with a token (kept in sessionStorage), then the project list with what the role may open.

import { ApiError, api, clearToken, getToken, setToken } from './api.js';
import { can, h, inProject, renderHeader, reportError, rgb, say } from './ui.js';

const signIn = document.getElementById('sign-in');
const projects = document.getElementById('projects');

function nextUrl() {
  const next = new URLSearchParams(window.location.search).get('next');
  // Only a path of this app: never an absolute URL handed in by a link.
  return next && next.startsWith('/app/') && !next.startsWith('//') ? next : null;
}

function showSignIn() {
  renderHeader(null);
  projects.hidden = true;
  signIn.hidden = false;
  document.getElementById('token').focus();
  if (new URLSearchParams(window.location.search).get('expired')) {
    say('Your token is no longer accepted: sign in again.', { kind: 'error' });
  }
}

function parseClasses(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line, id) => {
      const match = line.match(/^(.*\S)\s+#?([0-9a-fA-F]{6})$/);
      if (!match) throw new Error(`line ${id + 1} "${line}" is not "name #rrggbb"`);
      const hex = match[2];
      const color = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16));
      return { id, name: match[1], color };
    });
}

async function showProjects(user) {
  renderHeader(user, { current: 'projects' });
  signIn.hidden = true;
  projects.hidden = false;
  const list = await api('/projects', { what: 'loading the projects' });
  const body = document.querySelector('#project-table tbody');
  body.replaceChildren(
    ...list.map((project) => [project, inProject(user, project)]).map(([project, member]) =>
      h(
        'tr',
        { dataset: { projectId: project.id } },
        h('td', {}, h('strong', {}, project.name), project.description ? h('div', { class: 'muted' }, project.description) : ''),
        h(
          'td',
          {},
          project.classes.map((c) => h('span', { class: 'chip' }, h('span', { class: 'swatch', style: `background:${rgb(c.color)}` }), c.name)),
        ),
        h(
          'td',
          { class: 'actions' },
          can(member, 'annotate') ? h('a', { class: 'button', href: `/app/annotate/?project=${project.id}` }, 'Annotate') : '',
          can(member, 'review') ? h('a', { class: 'button', href: `/app/review/?project=${project.id}` }, 'Review') : '',
          member.role !== 'annotator' ? h('a', { class: 'button', href: `/app/dashboard/?project=${project.id}` }, can(member, 'lead') ? 'Dashboard' : 'Results') : '',
        ),
      ),
    ),
  );
  document.getElementById('no-projects').hidden = list.length > 0;
  document.getElementById('new-project').hidden = !can(user, 'lead');
}

document.getElementById('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = document.getElementById('token').value.trim();
  if (!token) return;
  setToken(token);
  try {
    const user = await api('/users/me', { what: 'signing in' });
    const next = nextUrl();
    if (next) {
      window.location.href = next;
      return;
    }
    await showProjects(user);
  } catch (error) {
    clearToken();
    reportError(error);
  }
});

document.getElementById('new-project-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const classes = parseClasses(form.classes.value);
    const project = await api('/projects', { json: { name: form.name.value, classes }, what: 'creating the project' });
    say(`Project "${project.name}" created.`);
    form.reset();
    await showProjects(await api('/users/me'));
  } catch (error) {
    reportError(error, 'creating the project');
  }
});

async function start() {
  if (!getToken()) {
    showSignIn();
    return;
  }
  try {
    await showProjects(await api('/users/me', { what: 'checking your sign-in' }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      clearToken();
      showSignIn();
    }
    reportError(error);
  }
}

start();
