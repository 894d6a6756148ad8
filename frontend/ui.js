// Shared page furniture: the header with role-aware menus, messages that stay until read, the signed-in user.

import { ApiError, api, clearToken, getToken } from './api.js';

// What each role may do in the app: mirrors server/permissions.py (the server checks every call anyway).
// Inside a project it is the caller's project role there (the project's `my_role`) that counts, not the
// account's: an annotator account may lead a project. `reviewer` is a project role only.
const CAPABILITIES = {
  admin: ['annotate', 'lead', 'read', 'review'],
  lead: ['annotate', 'lead', 'read', 'review'],
  annotator: ['annotate', 'read'],
  reviewer: ['read', 'review'],
  client: ['read'],
};

export function can(user, capability) {
  return Boolean(user && (CAPABILITIES[user.role] || []).includes(capability));
}

/** The user as seen inside `project`: their role there is their project role (an admin stays admin). */
export function inProject(user, project) {
  if (!user || !project || user.role === 'admin' || !project.my_role) return user;
  return { ...user, role: project.my_role, accountRole: user.role };
}

/** h('button', { class: 'x', onclick }, 'text', child…): a small DOM builder (text is never parsed as HTML). */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function messageBox() {
  let box = document.getElementById('messages');
  if (!box) {
    box = h('div', { id: 'messages', 'aria-live': 'polite' });
    document.body.prepend(box);
  }
  return box;
}

/** Show a message until dismissed (errors) or for a while (info); returns the element. */
export function say(text, { kind = 'info', timeoutMs = 6000, actions = [] } = {}) {
  const close = h('button', { class: 'close', 'aria-label': 'dismiss', title: 'dismiss' }, '×');
  const buttons = actions.map(({ label, run, id }) =>
    h('button', { id, onclick: () => { item.remove(); run(); } }, label),
  );
  const item = h(
    'div',
    { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'text' }, text),
    close,
    buttons.length ? h('div', { class: 'message-actions' }, buttons) : '',
  );
  close.addEventListener('click', () => item.remove());
  messageBox().append(item);
  if (kind !== 'error' && !actions.length && timeoutMs) setTimeout(() => item.remove(), timeoutMs);
  return item;
}

/** Report a failure in words: ApiErrors carry them already; anything else is described. Never silent. */
export function reportError(error, what) {
  if (error && error.name === 'AbortError') return null;
  // API refusals are shown and expected; anything else is a bug worth the console's error level.
  if (error instanceof ApiError) console.warn(error.message);
  else console.error(error);
  const text = error instanceof ApiError ? error.message : `${what ? `${what}: ` : ''}${error && error.message ? error.message : error}`;
  return say(text, { kind: 'error' });
}

/** The signed-in user (GET /users/me), or a redirect to the sign-in page when there is no valid token. */
export async function requireUser() {
  if (!getToken()) {
    window.location.href = `/app/?next=${encodeURIComponent(window.location.pathname + window.location.search)}`;
    throw new Error('not signed in');
  }
  try {
    return await api('/users/me', { what: 'checking your sign-in' });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      clearToken();
      window.location.href = '/app/?expired=1';
    }
    throw error;
  }
}

/** The header: app name, menus for what the user's role allows in `projectId`, who is signed in. Inside a
 * project the menus follow the caller's project role there: drawn at once from the account's role, then
 * again once the project (its `my_role`) is read, unless `user` already carries it (see inProject). */
export function renderHeader(user, { projectId = null, current = '' } = {}) {
  drawHeader(user, { projectId, current });
  if (user && projectId !== null && !user.accountRole && user.role !== 'admin') {
    api(`/projects/${projectId}`)
      .then((project) => drawHeader(inProject(user, project), { projectId, current }))
      .catch(() => {}); // the page itself reports a project it cannot read
  }
}

function drawHeader(user, { projectId = null, current = '' } = {}) {
  let header = document.getElementById('header');
  if (!header) {
    header = h('header', { id: 'header' });
    document.body.prepend(header);
  }
  const links = [h('a', { href: '/app/', class: current === 'projects' ? 'current' : '' }, 'Projects')];
  if (projectId !== null) {
    if (can(user, 'annotate')) {
      links.push(h('a', { href: `/app/annotate/?project=${projectId}`, class: current === 'annotate' ? 'current' : '', id: 'menu-annotate' }, 'Annotate'));
    }
    // An annotator's work is the annotation view; the dashboard's rounds and models are the lead's and clients'.
    if (can(user, 'read') && user.role !== 'annotator') {
      links.push(h('a', { href: `/app/dashboard/?project=${projectId}`, class: current === 'dashboard' ? 'current' : '', id: 'menu-dashboard' }, 'Dashboard'));
    }
    // Until the project role is known, an annotator account may be a reviewer there: the menu shows.
    if (can(user, 'review') || (user && !user.accountRole && user.role === 'annotator')) {
      links.push(h('a', { href: `/app/review/?project=${projectId}`, class: current === 'review' ? 'current' : '', id: 'menu-review' }, 'Review'));
    }
  }
  links.push(h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'API docs'));
  const signOut = h('button', {
    id: 'sign-out',
    onclick: () => {
      clearToken();
      window.location.href = '/app/';
    },
  }, 'Sign out');
  header.replaceChildren(
    h('a', { class: 'brand', href: '/app/' }, 'marslabel'),
    h('nav', { 'aria-label': 'main' }, links),
    user ? h('span', { class: 'who', id: 'who' }, user.accountRole ? `${user.name} (${user.role} here)` : `${user.name} (${user.role})`) : '',
    user ? signOut : '',
  );
}

export function projectIdFromUrl() {
  const value = new URLSearchParams(window.location.search).get('project');
  const id = Number(value);
  if (!Number.isInteger(id) || id <= 0) {
    say('No project chosen: pick one from the project list.', { kind: 'error' });
    throw new Error('no project in the URL');
  }
  return id;
}

export function rgb(color) {
  return `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
}

export function formatDate(value) {
  return value ? new Date(value).toLocaleString() : '';
}
