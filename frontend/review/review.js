// The review page: saved human labels awaiting a decision, each shown over its image with its author; accept,
// or reject with a comment (the image then goes back to its author's queue with it).

import { api, blobUrl } from '../api.js';
import { h, projectIdFromUrl, renderHeader, reportError, requireUser, say } from '../ui.js';
import { consensusView } from './consensus.js';

const $ = (id) => document.getElementById(id);
const state = { user: null, projectId: null };

function card(item) {
  const image = item.image;
  const base = `/projects/${state.projectId}/images/${image.id}`;
  const picture = h('img', { class: 'review-image', alt: image.file_name, width: image.width, height: image.height });
  const overlay = h('img', { class: 'review-overlay', alt: `label of ${image.file_name}`, width: image.width, height: image.height });
  blobUrl(`${base}/file`, { what: `image ${image.id}` }).then((url) => { picture.src = url; }, (e) => reportError(e, 'loading the image'));
  blobUrl(`${base}/masks/${item.mask_version}`, { what: `label of image ${image.id}` }).then((url) => { overlay.src = url; }, (e) => reportError(e, 'loading the label'));
  const comment = h('input', { type: 'text', class: 'review-comment', placeholder: 'what to fix (needed to reject)', maxlength: 2000 });
  const decide = async (decision) => {
    try {
      await api(`${base}/reviews`, {
        method: 'POST',
        json: { mask_version: item.mask_version, decision, comment: comment.value },
        what: `${decision === 'accepted' ? 'accepting' : 'rejecting'} the label of ${image.file_name}`,
      });
      say(`${image.file_name}: version ${item.mask_version} ${decision}.`);
      await load();
    } catch (error) {
      reportError(error, 'recording the decision');
    }
  };
  const effort = item.effort_seconds == null ? '' : ` · ${Math.round(item.effort_seconds)} s of work`;
  return h('section', { class: 'panel review-item', dataset: { imageId: image.id, version: item.mask_version } },
    h('h2', {}, image.file_name),
    h('p', { class: 'muted' }, `version ${item.mask_version} by ${item.author_name ?? 'unknown'} · ${Math.round(item.labeled_fraction * 100)} % labelled${effort}`),
    h('div', { class: 'review-stack', style: 'position:relative;display:inline-block' },
      picture, h('span', { style: 'position:absolute;inset:0;opacity:0.5;mix-blend-mode:normal' }, overlay)),
    consensusView(item, base),
    h('div', { class: 'row' },
      h('button', { class: 'review-accept', onclick: () => decide('accepted') }, 'Accept'),
      comment,
      h('button', { class: 'review-reject', onclick: () => decide('rejected') }, 'Reject')));
}

async function load() {
  const page = await api(`/projects/${state.projectId}/reviews/queue`, { query: { limit: 50 }, what: 'the review queue' });
  $('review-counts').textContent = `${page.total} awaiting review · ${page.accepted} accepted · ${page.rejected} rejected` +
    (page.review_percent < 100 ? ` · ${page.review_percent} % of labels drawn for review` : '');
  $('review-items').replaceChildren(...(page.items.length ? page.items.map(card) : [h('p', { class: 'muted', id: 'review-empty' }, 'Nothing awaits review.')]));
  document.body.dataset.ready = 'true';
}

async function main() {
  state.user = await requireUser();
  state.projectId = projectIdFromUrl();
  if (!state.user || state.projectId === null) return;
  renderHeader(state.user, { projectId: state.projectId, current: 'review' });
  try {
    const project = await api(`/projects/${state.projectId}`, { what: 'the project' });
    $('project-title').textContent = `Review · ${project.name}`;
    await load();
  } catch (error) {
    reportError(error, 'opening the review page');
    document.body.dataset.ready = 'error';
  }
}

main();
