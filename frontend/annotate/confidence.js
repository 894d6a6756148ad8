// The model's confidence in the view: the open image's mean confidence (the newest model prediction of it,
// from the queue or the image) in the Image panel, and over a model pseudo-label its per-pixel confidence map
// (GET …/masks/{version}/confidence, 8-bit: top class probability × 255) drawn as a dark veil over the pixels
// below the chosen level, so that the annotator sees where the model was unsure and looks there first.

import { ApiError, api } from '../api.js';
import { reportError } from '../ui.js';
import { current } from './open-image.js';
import { decodeGrayPng } from './png.js';
import { session } from './session.js';
import { addImageLayer, requestDraw } from './view.js';

const $ = (id) => document.getElementById(id);
const VEIL = (150 << 24) >>> 0; // black at alpha 150/255, little-endian RGBA

export const confidence = {
  imageId: null, // the image whose map is (being) loaded
  map: null, // Uint8Array of round(p × 255) per pixel, or null: no map for the open mask
  width: 0,
  height: 0,
  shade: true,
  level: 179, // pixels whose confidence level is below this (0..255) are shaded; 179 ≈ 0.70
};

const veil = document.createElement('canvas');
const veilContext = veil.getContext('2d');

function paintVeil() {
  const { map, width, height, level } = confidence;
  if (!map) return;
  veil.width = width;
  veil.height = height;
  const picture = veilContext.createImageData(width, height);
  const pixels = new Uint32Array(picture.data.buffer);
  let shaded = 0;
  for (let i = 0; i < map.length; i += 1) {
    if (map[i] < level) {
      pixels[i] = VEIL;
      shaded += 1;
    }
  }
  veilContext.putImageData(picture, 0, 0);
  const share = shaded / map.length;
  $('confidence-panel').dataset.shaded = share.toFixed(4);
  $('confidence-caption').textContent = `${(share * 100).toFixed(1)}% of the pixels below ${(level / 255).toFixed(2)}`;
}

function showLevel() {
  $('confidence-level-value').textContent = (confidence.level / 255).toFixed(2);
}

/** The open image's model confidence, and the confidence map of `latest` when it is a model mask (null: none,
 *  or a mask the annotator must not see). Called by load-save.js each time an image opens; never throws. */
export async function showModelConfidence(image, latest) {
  confidence.imageId = image.id;
  confidence.map = null;
  const panel = $('confidence-panel');
  panel.hidden = true;
  panel.dataset.loaded = 'false';
  $('model-confidence').textContent =
    image.model_confidence == null ? 'model confidence: no prediction yet' : `model confidence ${image.model_confidence.toFixed(2)}`;
  requestDraw();
  if (!latest || latest.source !== 'model') return;
  try {
    const url = `/projects/${session.projectId}/images/${image.id}/masks/${latest.version}/confidence`;
    const response = await api(url, { raw: true, what: 'loading the confidence map' });
    const decoded = await decodeGrayPng(await response.arrayBuffer());
    if (confidence.imageId !== image.id) return; // another image was opened meanwhile
    if (decoded.width !== image.width || decoded.height !== image.height) throw new Error(`the confidence map is ${decoded.width}×${decoded.height}, the image ${image.width}×${image.height}`);
    Object.assign(confidence, { map: decoded.data, width: decoded.width, height: decoded.height });
    paintVeil();
    panel.hidden = false;
    panel.dataset.loaded = 'true';
    requestDraw();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return; // a model mask stored before maps were kept
    reportError(error, 'the confidence map');
  }
}

addImageLayer((context) => {
  if (!confidence.shade || !confidence.map || !current.image || confidence.imageId !== current.image.id) return;
  context.globalAlpha = 1;
  context.drawImage(veil, 0, 0);
});

$('shade-confidence').addEventListener('change', (event) => {
  confidence.shade = event.target.checked;
  requestDraw();
});
$('confidence-level').addEventListener('input', (event) => {
  confidence.level = Number(event.target.value);
  showLevel();
  paintVeil();
  requestDraw();
});
showLevel();
