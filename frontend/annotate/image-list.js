// The image list: the project's images filtered by split, status and whether they have a mask, a page at a
// time; a click opens the image in the view (its URL then names it).

import { api } from '../api.js';
import { h, reportError } from '../ui.js';
import { jumpToImage } from './load-save.js';
import { current } from './open-image.js';
import { session } from './session.js';

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const listing = { offset: 0, total: 0, request: 0 };

function filters() {
  const query = { limit: PAGE, offset: listing.offset };
  if ($('filter-split').value) query.split = $('filter-split').value;
  if ($('filter-status').value) query.status = $('filter-status').value;
  if ($('filter-has-label').value) query.has_label = $('filter-has-label').value;
  return query;
}

function row(image) {
  const open = () => {
    $('image-list').close();
    jumpToImage(image.id);
  };
  const here = current.image && current.image.id === image.id;
  return h(
    'tr',
    { dataset: { imageId: image.id }, class: here ? 'current' : '' },
    h('td', {}, h('button', { class: 'link', onclick: open, title: `open image ${image.id}` }, image.file_name)),
    h('td', {}, image.split),
    h('td', {}, image.status),
    h('td', { class: 'num' }, image.latest_mask_version ?? '—'),
    h('td', { class: 'num confidence' }, image.model_confidence == null ? '—' : image.model_confidence.toFixed(2)),
  );
}

async function load({ append = false } = {}) {
  if (!append) listing.offset = 0;
  listing.request += 1;
  const request = listing.request;
  try {
    const page = await api(`/projects/${session.projectId}/images`, { query: filters(), what: 'listing the images' });
    if (request !== listing.request) return; // the filters changed meanwhile: a newer answer is on its way
    listing.total = page.total;
    const body = $('image-list-table').tBodies[0];
    const rows = page.items.map(row);
    if (append) body.append(...rows);
    else body.replaceChildren(...rows);
    listing.offset += page.items.length;
    $('image-list-caption').textContent = `${body.rows.length} of ${page.total} images`;
    $('image-list-more').hidden = listing.offset >= page.total;
  } catch (error) {
    reportError(error, 'listing the images');
  }
}

export function toggleImageList() {
  const dialog = $('image-list');
  if (dialog.open) {
    dialog.close();
    return;
  }
  dialog.showModal();
  load();
}

export function wireImageList() {
  for (const id of ['filter-split', 'filter-status', 'filter-has-label']) $(id).addEventListener('change', () => load());
  $('image-list-more').addEventListener('click', () => load({ append: true }));
  $('open-image-list').addEventListener('click', toggleImageList);
}
