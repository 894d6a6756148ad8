// The reviewer's comment in the annotation view: when the image shown came back rejected (its newest human
// version was rejected and not fixed yet), a note above the canvas says by whom and what to fix. Kept apart
// from annotate.js: it only reads window.annotator.image and the image's reviews.

import { api } from '../api.js';
import { h } from '../ui.js';

let shown = null;

async function update() {
  const image = window.annotator?.image;
  const key = image ? `${image.id}:${image.latest_mask_version}` : null;
  if (key === shown) return;
  shown = key;
  document.getElementById('review-note')?.remove();
  if (!image || !image.latest_mask_version) return;
  const reviews = await api(`/projects/${image.project_id}/images/${image.id}/reviews`, { what: 'the review of this image' });
  const last = reviews[reviews.length - 1];
  if (!last || last.decision !== 'rejected' || last.mask_version !== image.latest_mask_version || shown !== key) return;
  const note = h('div', { id: 'review-note', class: 'message error', role: 'status' },
    `Rejected by ${last.reviewer_name ?? 'a reviewer'}: ${last.comment}`);
  document.getElementById('image-name')?.after(note);
}

setInterval(() => update().catch(() => {}), 1000);
