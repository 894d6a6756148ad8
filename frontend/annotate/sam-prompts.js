// SAM in the view: the prompt being built (include and exclude points, a box), its decoded preview in the
// class colour, and committing the preview into the mask. The decoder itself is frontend/sam/.

import { getToken } from '../api.js';
import { SamClient } from '../sam/sam-client.js';
import { reportError } from '../ui.js';
import { ServerDecoder, forcedDecoder, measureDecoders } from './decoder-choice.js';
import { countAction } from './effort.js';
import { cleanSamMask } from './mask-cleanup.js';
import { current } from './open-image.js';
import { onToolChange, onValueChange, selection } from './selection.js';
import { timings, valueColor, valueName } from './session.js';
import { addImageLayer, addScreenLayer, littleEndianColor, requestDraw, updateStatus } from './view.js';

export const sam = {
  client: null, // SamClient
  image: null, // promise of the opened SAM image (its embedding)
  prompt: { points: [], labels: [], box: null },
  dragBox: null, // the box being dragged, not yet a prompt
  preview: null, // { mask, width, height, score, roundTripMs }
  decoding: false,
  decodeAgain: false,
  choice: null, // { chosen: 'browser' | 'server', browserMs, serverMs, forced } once measured (or forced)
};

const previewCanvas = document.createElement('canvas');
const previewContext = previewCanvas.getContext('2d');

export function samStatus(text) {
  document.getElementById('sam-status').textContent = `SAM: ${text}`;
}

export function clearPrompt() {
  const hadPreview = sam.preview !== null;
  sam.prompt = { points: [], labels: [], box: null };
  sam.preview = null;
  if (hadPreview) samStatus('prompt cleared · click to start a mask');
  updateStatus();
  requestDraw();
}

function renderPreview() {
  const { mask, width, height } = sam.preview;
  previewCanvas.width = width;
  previewCanvas.height = height;
  const picture = previewContext.createImageData(width, height);
  const pixels = new Uint32Array(picture.data.buffer);
  const color = littleEndianColor(valueColor(selection.value));
  for (let i = 0; i < mask.length; i += 1) if (mask[i]) pixels[i] = color;
  previewContext.putImageData(picture, 0, 0);
}

async function decodePrompt() {
  if (sam.decoding) {
    sam.decodeAgain = true; // coalesce: only the latest prompt matters
    return;
  }
  const { points, labels, box } = sam.prompt;
  if (!points.length && !box) return;
  sam.decoding = true;
  const imageId = current.image.id;
  try {
    samStatus('waiting for the embedding…');
    await sam.image;
    samStatus('decoding…');
    const useServer = sam.choice !== null && sam.choice.chosen === 'server';
    const decoder = useServer ? new ServerDecoder(current.image) : sam.client;
    const answer = await decoder.decode({ points, labels, box });
    if (!current.image || current.image.id !== imageId) return;
    sam.preview = { ...answer, decoder: useServer ? 'server' : 'browser' };
    renderPreview();
    samStatus(`preview ready (score ${answer.score.toFixed(2)}, ${Math.round(answer.roundTripMs)} ms on the ${sam.preview.decoder}) · Enter commits`);
  } catch (error) {
    samStatus('failed');
    reportError(error, 'SAM');
  } finally {
    sam.decoding = false;
    updateStatus();
    requestDraw();
    if (sam.decodeAgain) {
      sam.decodeAgain = false;
      decodePrompt();
    }
  }
}

/** A click: label 1 includes, 0 excludes; the prompt is decoded again. */
export function addPoint(x, y, label) {
  countAction(label === 1 ? 'sam_positive_clicks' : 'sam_negative_clicks');
  sam.prompt.points.push([x, y]);
  sam.prompt.labels.push(label);
  requestDraw();
  decodePrompt();
}

/** A dragged box [x0, y0, x1, y1] replaces the prompt's box. */
export function setBox(box) {
  countAction('sam_boxes');
  sam.prompt.box = box;
  decodePrompt();
}

export function setDragBox(box) {
  sam.dragBox = box;
}

export function commitPreview() {
  if (!sam.preview || !current.editor) return;
  const { editor } = current;
  // Speckle dropped, pinholes filled, thin unlabelled seams to the labels around claimed (mask-cleanup.js).
  editor.apply(cleanSamMask(sam.preview.mask, editor.mask, editor.width, editor.height).mask, selection.value);
  countAction('sam_commits');
  clearPrompt();
  // Said in the SAM status, not as a message: one per commit would pile up over the image.
  samStatus(`committed as ${valueName(selection.value)} · click for the next mask`);
}

export async function startSam() {
  sam.client = new SamClient({ token: getToken() });
  try {
    await sam.client.start();
    samStatus('ready');
  } catch (error) {
    samStatus('unavailable');
    reportError(error, 'starting SAM in the browser');
  }
}

function showDecoderChoice() {
  const { chosen, browserMs, serverMs, forced } = sam.choice;
  const ms = (value) => (value == null ? 'failed' : `${Math.round(value)} ms`);
  const text = forced
    ? `SAM decodes on the ${chosen} (chosen in the address)`
    : chosen === null
      ? 'SAM: no decoder answered'
      : `SAM decodes on the ${chosen}: browser ${ms(browserMs)}, server ${ms(serverMs)} a click`;
  const line = document.getElementById('status-sam');
  line.textContent = text;
  line.dataset.decoder = chosen ?? '';
}

let measuring = false;

/** Once per page, on the first image whose embedding is open: measure both decoders, keep the faster. */
async function chooseDecoder(image) {
  if (sam.choice !== null || measuring) return;
  const forced = forcedDecoder();
  if (forced) {
    sam.choice = { chosen: forced, browserMs: null, serverMs: null, forced: true };
    showDecoderChoice();
    return;
  }
  measuring = true;
  document.getElementById('status-sam').textContent = 'SAM: measuring the decoders…';
  try {
    sam.choice = { ...(await measureDecoders(sam.client, image)), forced: false };
    showDecoderChoice();
  } finally {
    measuring = false;
  }
}

/** Start opening `image`'s embedding (the prompt of the previous image is dropped by the caller). */
export function openSamImage(projectId, image) {
  const started = performance.now();
  sam.image = sam.client
    ? sam.client.openImage(projectId, image.id).then((opened) => {
      timings.samOpenMs = performance.now() - started;
      timings.samReadyAt = performance.now(); // since navigation start
      if (current.image && current.image.id === image.id) samStatus(`ready (${image.width}×${image.height})`);
      chooseDecoder(image);
      return opened;
    })
    : Promise.reject(new Error('SAM is not running'));
  sam.image.catch((error) => {
    samStatus('no embedding');
    if (current.image && current.image.id === image.id) reportError(error, 'SAM embedding');
  });
  samStatus('loading the embedding…');
}

onToolChange((tool) => {
  if (tool !== 'sam') clearPrompt();
});
onValueChange(() => {
  if (sam.preview) renderPreview();
});

addImageLayer((context) => {
  if (!sam.preview) return;
  context.globalAlpha = 0.6;
  context.drawImage(previewCanvas, 0, 0);
});

addScreenLayer((context, toScreen) => {
  if (selection.tool !== 'sam') return;
  const { box, points, labels } = sam.prompt;
  for (const b of [box, sam.dragBox]) {
    if (!b) continue;
    const [sx, sy] = toScreen(b[0], b[1]);
    const [ex, ey] = toScreen(b[2], b[3]);
    context.setLineDash([6, 4]);
    context.strokeStyle = '#ffe14d';
    context.lineWidth = 2;
    context.strokeRect(sx, sy, ex - sx, ey - sy);
    context.setLineDash([]);
  }
  points.forEach(([px, py], i) => {
    const [sx, sy] = toScreen(px, py);
    context.beginPath();
    context.arc(sx, sy, 6, 0, Math.PI * 2);
    context.fillStyle = labels[i] === 1 ? '#2ecc40' : '#ff4136';
    context.fill();
    context.strokeStyle = '#fff';
    context.lineWidth = 2;
    context.stroke();
  });
});
