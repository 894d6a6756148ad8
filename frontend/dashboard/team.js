// The dashboard's team panels: the review panel (pending, accepted, rejected, consensus disagreements) and the
// per-annotator figures (labels saved, acceptance rate, agreement with reviewers and with other annotators, median
// time per image from the effort the annotation view records), from GET /projects/{id}/team. Its own module:
// dashboard.js only calls renderTeamPanels once the project is known; the sections are added to the grid here.

import { api } from '../api.js';
import { h, reportError } from '../ui.js';

const share = (value) => (value == null ? '—' : `${(value * 100).toFixed(1)} %`);
const seconds = (value) => (value == null ? '—' : `${Math.round(value)} s`);

function section(id, title) {
  let panel = document.getElementById(id);
  if (!panel) {
    panel = h('section', { class: 'panel wide', id, 'aria-labelledby': `${id}-heading` });
    (document.querySelector('.dashboard-grid') || document.querySelector('main')).append(panel);
  }
  panel.replaceChildren(h('h2', { id: `${id}-heading` }, title));
  return panel;
}

function reviewPanel(projectId, review) {
  const panel = section('review-panel', 'Review');
  const figure = (key, label, value) => h('div', { class: 'figure', dataset: { figure: key } }, h('strong', {}, String(value)), ` ${label}`);
  panel.append(
    h('div', { class: 'inline-form', id: 'review-figures' },
      figure('pending', 'pending', review.pending),
      figure('accepted', 'accepted', review.accepted),
      figure('rejected', 'rejected', review.rejected),
      figure('disagreements', `disagreements of ${review.consensus_pairs} consensus pairs`, review.disagreements),
      h('span', { class: 'muted' }, `mean agreement of the pairs ${share(review.mean_consensus_miou)}`)),
    h('a', { class: 'button', href: `/app/review/?project=${projectId}`, id: 'open-review' }, 'Open the review queue'),
  );
}

function annotatorPanel(annotators) {
  const panel = section('annotators-panel', 'Annotators');
  if (!annotators.length) {
    panel.append(h('p', { class: 'muted' }, 'Nobody labels in this project yet.'));
    return;
  }
  const head = ['annotator', 'role', 'labels saved', 'images', 'accepted', 'rejected', 'acceptance', 'agreement with reviewers', 'agreement with annotators', 'median time / image'];
  panel.append(h('table', { class: 'list', id: 'annotator-table' },
    h('tr', {}, head.map((text) => h('th', {}, text))),
    annotators.map((a) => h('tr', { dataset: { user: a.user_name } },
      h('td', {}, a.user_name),
      h('td', {}, a.project_role ?? 'former member'),
      h('td', { class: 'num' }, a.labels_saved),
      h('td', { class: 'num' }, a.images_labelled),
      h('td', { class: 'num' }, a.accepted),
      h('td', { class: 'num' }, a.rejected),
      h('td', { class: 'num', dataset: { figure: 'acceptance' } }, share(a.acceptance_rate)),
      h('td', { class: 'num', dataset: { figure: 'reviewers' }, title: `${a.corrections} corrections` }, share(a.agreement_with_reviewers)),
      h('td', { class: 'num', dataset: { figure: 'annotators' }, title: `${a.consensus_pairs} consensus pairs` }, share(a.agreement_with_annotators)),
      h('td', { class: 'num', title: 'median active seconds per image, from the effort the annotation view sends with each save' }, seconds(a.median_seconds_per_image))))));
}

/** Draw (or redraw) the review and annotator panels of project `projectId`; errors are shown, never thrown. */
export async function renderTeamPanels(projectId) {
  try {
    const team = await api(`/projects/${projectId}/team`, { what: 'loading the team figures' });
    reviewPanel(projectId, team.review);
    annotatorPanel(team.annotators);
  } catch (error) {
    reportError(error, 'loading the team figures');
  }
}
