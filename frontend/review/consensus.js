// A consensus pair on the review page: when the label under review is the second of two annotators' labels and
// their agreement fell below the project's threshold, both labels over the image side by side, with the mIoU and
// the IoU per class. Kept apart from review.js: it only needs the queue item and the image's base URL.

import { blobUrl } from '../api.js';
import { h, reportError } from '../ui.js';

const percent = (value) => (value == null ? '—' : `${(value * 100).toFixed(1)} %`);

function labelled(base, image, label, which) {
  const picture = h('img', { class: 'review-image', alt: image.file_name, width: image.width, height: image.height });
  const overlay = h('img', { class: 'review-overlay', alt: `${which} label of ${image.file_name}`, width: image.width, height: image.height });
  blobUrl(`${base}/file`, { what: `image ${image.id}` }).then((url) => { picture.src = url; }, (e) => reportError(e, 'loading the image'));
  blobUrl(`${base}/masks/${label.mask_version}`, { what: `label of image ${image.id}` }).then((url) => { overlay.src = url; }, (e) => reportError(e, 'loading the label'));
  return h('figure', { class: `consensus-${which}`, dataset: { version: label.mask_version } },
    h('div', { style: 'position:relative;display:inline-block' },
      picture, h('span', { style: 'position:absolute;inset:0;opacity:0.5' }, overlay)),
    h('figcaption', {}, `${which}: version ${label.mask_version} by ${label.author_name ?? 'unknown'}`));
}

/** Both labels of `item.consensus` side by side, and their agreement; null when the item is no consensus pair. */
export function consensusView(item, base) {
  const pair = item.consensus;
  if (!pair) return null;
  return h('div', { class: 'consensus-pair' },
    h('p', { class: 'consensus-agreement' },
      `Two annotators disagree: mIoU ${percent(pair.miou)} (threshold ${percent(pair.threshold)}) over the ` +
      `${percent(pair.compared_fraction)} of pixels both labelled`),
    h('div', { style: 'display:flex;gap:12px;flex-wrap:wrap' },
      labelled(base, item.image, pair.first, 'first'), labelled(base, item.image, pair.second, 'second')),
    h('table', { class: 'list consensus-classes' },
      h('tr', {}, h('th', {}, 'class'), h('th', {}, 'IoU')),
      pair.classes.map((c) => h('tr', {}, h('td', {}, c.name), h('td', { class: 'num' }, percent(c.iou))))));
}
