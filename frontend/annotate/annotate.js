// The annotation view: the next image of the ranked queue on a canvas with its mask overlaid; SAM prompts
// decoded in the browser (frontend/sam/), brush, eraser, flood fill, undo/redo per stroke; saving a new mask
// version on top of the one it started from, with the conflict (409) explained and resolvable.

import { ApiError, api, getToken } from '../api.js';
import { SamClient } from '../sam/sam-client.js';
import { h, projectIdFromUrl, renderHeader, reportError, requireUser, rgb, say } from '../ui.js';
import { IGNORE, MaskEditor } from './editor.js';
import { decodeGrayPng, encodeGrayPng } from './png.js';

const $ = (id) => document.getElementById(id);
const canvas = $('view');
const context = canvas.getContext('2d');
const MIN_SCALE = 0.05;
const MAX_SCALE = 32;
const DRAG_PIXELS = 5; // a SAM press that moves further than this (screen px) is a box, else a click

const state = {
  user: null,
  projectId: null,
  project: null,
  image: null, // ImagePublic
  claim: null, // { rank, score } when the image came from the queue
  bitmap: null,
  editor: null,
  baseVersion: null, // the mask version this edit started from (null: none)
  savedRevision: 0,
  savedHere: false,
  tool: 'sam',
  value: 0, // class id being drawn, or IGNORE
  brushRadius: 10,
  opacity: 0.55,
  showMask: true,
  view: { scale: 1, x: 0, y: 0 },
  pointer: null, // last pointer position in image coordinates
  gesture: null,
  spaceDown: false,
  sam: null,
  samImage: null, // promise of the opened SAM image
  prompt: { points: [], labels: [], box: null },
  preview: null, // { mask, width, height, score }
  decoding: false,
  decodeAgain: false,
  round: null,
  drawCount: 0,
  timings: {},
  busy: false,
};
window.annotator = state; // for tests and the benchmark: read-only inspection of the view's state

const overlay = document.createElement('canvas');
const overlayContext = overlay.getContext('2d');
let overlayData = null;
let lut = new Uint32Array(256);
const previewCanvas = document.createElement('canvas');
const previewContext = previewCanvas.getContext('2d');

// ---------------------------------------------------------------- drawing

function littleEndianColor([r, g, b], alpha = 255) {
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

function buildLut() {
  lut = new Uint32Array(256); // unknown ids and ignore: transparent
  for (const c of state.project.classes) lut[c.id] = littleEndianColor(c.color);
}

function paintOverlay(box) {
  if (!overlayData) return;
  const { width } = state.image;
  const pixels = new Uint32Array(overlayData.data.buffer);
  const mask = state.editor.mask;
  for (let y = box.y; y < box.y + box.h; y += 1) {
    const row = y * width;
    for (let x = box.x; x < box.x + box.w; x += 1) pixels[row + x] = lut[mask[row + x]];
  }
  overlayContext.putImageData(overlayData, 0, 0, box.x, box.y, box.w, box.h);
}

// Edits only grow a dirty rectangle; the next frame repaints it once and refreshes the status line. Painting
// stamps many discs per pointer event, so doing either per disc would cost more than the drawing itself.
let pendingOverlay = null;
let statusStale = false;

function maskChanged(box) {
  if (pendingOverlay === null) pendingOverlay = { ...box };
  else {
    const x1 = Math.max(pendingOverlay.x + pendingOverlay.w, box.x + box.w);
    const y1 = Math.max(pendingOverlay.y + pendingOverlay.h, box.y + box.h);
    pendingOverlay.x = Math.min(pendingOverlay.x, box.x);
    pendingOverlay.y = Math.min(pendingOverlay.y, box.y);
    pendingOverlay.w = x1 - pendingOverlay.x;
    pendingOverlay.h = y1 - pendingOverlay.y;
  }
  statusStale = true;
  requestDraw();
}

let frameRequested = false;
function requestDraw() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(draw);
}

function resizeCanvas() {
  const ratio = window.devicePixelRatio || 1;
  const { clientWidth, clientHeight } = canvas;
  if (canvas.width !== Math.round(clientWidth * ratio) || canvas.height !== Math.round(clientHeight * ratio)) {
    canvas.width = Math.round(clientWidth * ratio);
    canvas.height = Math.round(clientHeight * ratio);
  }
  return ratio;
}

function currentColor() {
  if (state.value === IGNORE) return [255, 255, 255];
  const c = state.project.classes.find((item) => item.id === state.value);
  return c ? c.color : [255, 255, 255];
}

function draw() {
  frameRequested = false;
  if (pendingOverlay !== null) {
    paintOverlay(pendingOverlay);
    pendingOverlay = null;
  }
  if (statusStale) {
    statusStale = false;
    updateStatus();
  }
  const ratio = resizeCanvas();
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.fillStyle = '#1b1715';
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (!state.bitmap) return;
  const { scale, x, y } = state.view;
  context.setTransform(ratio * scale, 0, 0, ratio * scale, ratio * x, ratio * y);
  context.imageSmoothingEnabled = scale < 2;
  context.drawImage(state.bitmap, 0, 0);
  context.imageSmoothingEnabled = false;
  if (state.showMask) {
    context.globalAlpha = state.opacity;
    context.drawImage(overlay, 0, 0);
  }
  if (state.preview) {
    context.globalAlpha = 0.6;
    context.drawImage(previewCanvas, 0, 0);
  }
  context.globalAlpha = 1;
  // Prompts and the brush outline in screen pixels.
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const toScreen = (px, py) => [px * scale + x, py * scale + y];
  if (state.tool === 'sam') {
    const { box, points, labels } = state.prompt;
    const drag = state.gesture && state.gesture.kind === 'sam-box' ? state.gesture.box : null;
    for (const b of [box, drag]) {
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
  } else if ((state.tool === 'brush' || state.tool === 'eraser') && state.pointer) {
    const [sx, sy] = toScreen(state.pointer.x, state.pointer.y);
    context.beginPath();
    context.arc(sx, sy, Math.max(2, state.brushRadius * scale), 0, Math.PI * 2);
    context.strokeStyle = '#fff';
    context.lineWidth = 1.5;
    context.stroke();
  }
  state.drawCount += 1;
}

function fitView() {
  if (!state.image) return;
  const { clientWidth, clientHeight } = canvas;
  const scale = Math.min(clientWidth / state.image.width, clientHeight / state.image.height) * 0.96;
  state.view = {
    scale,
    x: (clientWidth - state.image.width * scale) / 2,
    y: (clientHeight - state.image.height * scale) / 2,
  };
  updateStatus();
  requestDraw();
}

function zoomAt(factor, screenX, screenY) {
  const { scale, x, y } = state.view;
  const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
  state.view = { scale: next, x: screenX - ((screenX - x) * next) / scale, y: screenY - ((screenY - y) * next) / scale };
  updateStatus();
  requestDraw();
}

function toImage(event) {
  const rect = canvas.getBoundingClientRect();
  const sx = event.clientX - rect.left;
  const sy = event.clientY - rect.top;
  return { sx, sy, x: (sx - state.view.x) / state.view.scale, y: (sy - state.view.y) / state.view.scale };
}

function inside(point) {
  return point.x >= 0 && point.y >= 0 && point.x < state.image.width && point.y < state.image.height;
}

// ---------------------------------------------------------------- status and controls

function dirty() {
  return Boolean(state.editor) && state.editor.revision !== state.savedRevision;
}

function valueName(value) {
  if (value === IGNORE) return 'ignore';
  const c = state.project && state.project.classes.find((item) => item.id === value);
  return c ? c.name : `class ${value}`;
}

function updateStatus() {
  $('status-tool').textContent = `${state.tool} · ${valueName(state.value)}`;
  $('status-zoom').textContent = `zoom ${Math.round(state.view.scale * 100)}%`;
  $('status-saved').textContent = !state.editor ? '' : dirty() ? 'unsaved changes' : state.baseVersion ? `saved · version ${state.baseVersion}` : 'no mask yet';
  $('undo').disabled = !state.editor || state.editor.undoStack.length === 0;
  $('redo').disabled = !state.editor || state.editor.redoStack.length === 0;
  $('sam-commit').disabled = !state.preview;
  $('brush-size-value').textContent = String(state.brushRadius * 2);
  for (const button of document.querySelectorAll('[data-tool]')) button.setAttribute('aria-pressed', String(button.dataset.tool === state.tool));
  for (const button of document.querySelectorAll('[data-value]')) button.setAttribute('aria-pressed', String(Number(button.dataset.value) === state.value));
  canvas.className = state.tool;
  $('sam-panel').hidden = state.tool !== 'sam';
}

function setTool(tool) {
  state.tool = tool;
  if (tool !== 'sam') clearPrompt();
  updateStatus();
  requestDraw();
}

function setValue(value) {
  state.value = value;
  if (state.preview) renderPreview();
  updateStatus();
}

function buildPalette() {
  const entries = state.project.classes.map((c, index) => ({ value: c.id, name: c.name, color: rgb(c.color), key: index < 9 ? String(index + 1) : '' }));
  entries.push({ value: IGNORE, name: 'ignore', color: 'repeating-linear-gradient(45deg,#fff 0 3px,#999 3px 6px)', key: '0' });
  $('palette').replaceChildren(
    ...entries.map((entry) =>
      h(
        'button',
        { dataset: { value: entry.value }, title: `${entry.name}${entry.key ? ` (${entry.key})` : ''}`, onclick: () => setValue(entry.value) },
        h('span', { class: 'swatch', style: `background:${entry.color}` }),
        entry.name,
        entry.key ? h('kbd', {}, entry.key) : '',
      ),
    ),
  );
}

async function updateCounter() {
  try {
    const [rounds, labeled, pool] = await Promise.all([
      api(`/projects/${state.projectId}/rounds`, { what: 'loading the rounds' }),
      api(`/projects/${state.projectId}/images`, { query: { split: 'pool', status: 'labeled', limit: 1 } }),
      api(`/projects/${state.projectId}/images`, { query: { split: 'pool', limit: 1 } }),
    ]);
    const done = rounds.filter((r) => r.status === 'done').sort((a, b) => b.index - a.index);
    state.round = done[0] || null;
    if (state.round) {
      const since = Math.max(0, labeled.total - state.round.labeled_count);
      $('counter').textContent = `Round ${state.round.index}: ${since} / ${state.round.budget} labeled (budget) · ${labeled.total} of ${pool.total} pool images labeled`;
    } else {
      $('counter').textContent = `${labeled.total} of ${pool.total} pool images labeled · no round yet`;
    }
  } catch (error) {
    reportError(error, 'counting the labeled images');
  }
}

// ---------------------------------------------------------------- SAM

function clearPrompt() {
  state.prompt = { points: [], labels: [], box: null };
  state.preview = null;
  updateStatus();
  requestDraw();
}

function samStatus(text) {
  $('sam-status').textContent = `SAM: ${text}`;
}

function renderPreview() {
  const { mask, width, height } = state.preview;
  previewCanvas.width = width;
  previewCanvas.height = height;
  const picture = previewContext.createImageData(width, height);
  const pixels = new Uint32Array(picture.data.buffer);
  const color = littleEndianColor(currentColor());
  for (let i = 0; i < mask.length; i += 1) if (mask[i]) pixels[i] = color;
  previewContext.putImageData(picture, 0, 0);
}

async function decodePrompt() {
  if (state.decoding) {
    state.decodeAgain = true; // coalesce: only the latest prompt matters
    return;
  }
  const { points, labels, box } = state.prompt;
  if (!points.length && !box) return;
  state.decoding = true;
  const imageId = state.image.id;
  try {
    samStatus('waiting for the embedding…');
    await state.samImage;
    samStatus('decoding…');
    const answer = await state.sam.decode({ points, labels, box });
    if (!state.image || state.image.id !== imageId) return;
    state.preview = answer;
    renderPreview();
    samStatus(`preview ready (score ${answer.score.toFixed(2)}, ${Math.round(answer.roundTripMs)} ms) · Enter commits`);
  } catch (error) {
    samStatus('failed');
    reportError(error, 'SAM');
  } finally {
    state.decoding = false;
    updateStatus();
    requestDraw();
    if (state.decodeAgain) {
      state.decodeAgain = false;
      decodePrompt();
    }
  }
}

function commitPreview() {
  if (!state.preview || !state.editor) return;
  state.editor.apply(state.preview.mask, state.value);
  say(`SAM mask committed as ${valueName(state.value)}.`, { timeoutMs: 2500 });
  clearPrompt();
}

async function startSam() {
  state.sam = new SamClient({ token: getToken() });
  try {
    await state.sam.start();
    samStatus('ready');
  } catch (error) {
    samStatus('unavailable');
    reportError(error, 'starting SAM in the browser');
  }
}

// ---------------------------------------------------------------- loading and saving

async function loadBitmap(imageId) {
  const response = await api(`/projects/${state.projectId}/images/${imageId}/file`, { raw: true, what: 'loading the image' });
  return createImageBitmap(await response.blob());
}

async function loadLatestMask(image) {
  const history = await api(`/projects/${state.projectId}/images/${image.id}/masks`, { what: 'loading the mask history' });
  if (!history.length) return { latest: null, mask: null };
  const latest = history.reduce((a, b) => (b.version > a.version ? b : a));
  const response = await api(`/projects/${state.projectId}/images/${image.id}/masks/${latest.version}`, { raw: true, what: 'loading the mask' });
  const decoded = await decodeGrayPng(await response.arrayBuffer());
  if (decoded.width !== image.width || decoded.height !== image.height) {
    throw new Error(`the stored mask is ${decoded.width}×${decoded.height}, the image ${image.width}×${image.height}`);
  }
  return { latest, mask: decoded.data };
}

function describeSource(latest) {
  if (!latest) return 'No mask yet: start from scratch or with SAM.';
  if (latest.source === 'model') {
    const confidence = latest.confidence == null ? '' : `, confidence ${latest.confidence.toFixed(2)}`;
    return `Starting from the model's pseudo-label (version ${latest.version}, model ${latest.model_version_id ?? '?'}${confidence}): correct it and save.`;
  }
  return `Starting from ${latest.source} mask version ${latest.version}.`;
}

/** Show `image` with its latest mask; `claim` holds rank/score when it came from the queue. */
async function openImage(image, claim = null) {
  const started = performance.now();
  state.busy = true;
  document.body.dataset.ready = 'false';
  clearPrompt();
  state.image = image;
  state.claim = claim;
  state.savedHere = false;
  $('image-name').textContent = image.file_name;
  $('image-rank').textContent = claim && claim.rank != null ? `queue rank ${claim.rank} · score ${claim.score.toFixed(4)}` : claim ? 'queue: import order (no round yet)' : `image ${image.id}`;
  const samStarted = performance.now();
  state.samImage = state.sam
    ? state.sam.openImage(state.projectId, image.id).then((opened) => {
      state.timings.samOpenMs = performance.now() - samStarted;
      state.timings.samReadyAt = performance.now(); // since navigation start
      if (state.image && state.image.id === image.id) samStatus(`ready (${image.width}×${image.height})`);
      return opened;
    })
    : Promise.reject(new Error('SAM is not running'));
  state.samImage.catch((error) => {
    samStatus('no embedding');
    if (state.image && state.image.id === image.id) reportError(error, 'SAM embedding');
  });
  samStatus('loading the embedding…');
  const [bitmap, { latest, mask }] = await Promise.all([loadBitmap(image.id), loadLatestMask(image)]);
  if (state.bitmap) state.bitmap.close();
  state.bitmap = bitmap;
  state.baseVersion = latest ? latest.version : null;
  $('mask-source').textContent = describeSource(latest);
  state.editor = new MaskEditor(image.width, image.height, mask, { onChange: maskChanged });
  state.savedRevision = state.editor.revision;
  overlay.width = image.width;
  overlay.height = image.height;
  overlayData = overlayContext.createImageData(image.width, image.height);
  pendingOverlay = null;
  paintOverlay({ x: 0, y: 0, w: image.width, h: image.height });
  fitView();
  state.busy = false;
  state.timings.openMs = performance.now() - started;
  state.timings.readyAt = performance.now(); // since navigation start
  document.body.dataset.ready = 'true';
  document.body.dataset.imageId = String(image.id);
  updateStatus();
  canvas.focus();
}

async function nextFromQueue() {
  const answer = await api(`/projects/${state.projectId}/queue/next`, { method: 'POST', what: 'taking the next image' });
  if (!answer.image) {
    state.image = null;
    state.editor = null;
    state.bitmap = null;
    $('image-name').textContent = 'Nothing left in the queue for you.';
    $('image-rank').textContent = '';
    $('mask-source').textContent = '';
    say('The queue is empty: every pool image is labeled, claimed by someone else, or skipped by you.', { kind: 'warning', timeoutMs: 0 });
    document.body.dataset.ready = 'true';
    requestDraw();
    updateStatus();
    return;
  }
  await openImage(answer.image, { rank: answer.rank, score: answer.score });
}

async function postMask(baseVersion) {
  const blob = await encodeGrayPng(state.editor.mask, state.image.width, state.image.height);
  const form = new FormData();
  form.append('mask', blob, `${state.image.file_name.replace(/\.[^.]*$/, '')}.png`);
  if (baseVersion != null) form.append('base_version', String(baseVersion));
  return api(`/projects/${state.projectId}/images/${state.image.id}/masks`, { form, what: 'saving the mask' });
}

function showConflict(error) {
  const item = say(
    `Not saved: someone saved this image while you were editing it.\n${error.detail}\n` +
      'Reload to see the newer version (your edits are dropped), or overwrite knowingly to save yours as a new ' +
      'version on top of it.',
    {
      kind: 'error',
      actions: [
        { label: 'Reload', id: 'conflict-reload', run: () => reloadImage() },
        { label: 'Overwrite knowingly', id: 'conflict-overwrite', run: () => save({ overwrite: true }) },
      ],
    },
  );
  item.classList.add('conflict');
  item.id = 'conflict';
}

/** Save a new version on top of the one this edit started from; with overwrite, on top of the latest. */
async function save({ overwrite = false } = {}) {
  if (!state.editor || state.busy) return false;
  state.busy = true;
  try {
    let base = state.baseVersion;
    if (overwrite) {
      const history = await api(`/projects/${state.projectId}/images/${state.image.id}/masks`, { what: 'reading the mask history' });
      base = history.length ? Math.max(...history.map((m) => m.version)) : null;
    }
    const revision = state.editor.revision;
    const saved = await postMask(base);
    state.baseVersion = saved.version;
    state.savedRevision = revision;
    state.savedHere = true;
    $('mask-source').textContent = `Saved by you as version ${saved.version}.`;
    say(`Saved as version ${saved.version}${overwrite ? ` (on top of version ${base})` : ''}.`, { timeoutMs: 3000 });
    updateCounter();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) showConflict(error);
    else reportError(error, 'saving the mask');
    return false;
  } finally {
    state.busy = false;
    updateStatus();
  }
}

async function reloadImage() {
  try {
    const image = await api(`/projects/${state.projectId}/images/${state.image.id}`, { what: 'reloading the image' });
    await openImage(image, state.claim);
    say('Reloaded the latest version.', { timeoutMs: 2500 });
  } catch (error) {
    reportError(error);
  }
}

async function next() {
  if (state.busy) return;
  try {
    if (dirty() && !(await save())) return;
    if (state.image && state.claim && !state.savedHere) {
      await api(`/projects/${state.projectId}/queue/skip`, { json: { image_id: state.image.id }, what: 'leaving the image' });
    }
    await nextFromQueue();
  } catch (error) {
    reportError(error);
  }
}

async function skip() {
  if (!state.image || state.busy) return;
  if (dirty() && !window.confirm('Skip this image and drop your unsaved changes?')) return;
  try {
    await api(`/projects/${state.projectId}/queue/skip`, { json: { image_id: state.image.id }, what: 'skipping the image' });
    say(`Skipped ${state.image.file_name}.`, { timeoutMs: 2500 });
    await nextFromQueue();
  } catch (error) {
    reportError(error);
  }
}

// ---------------------------------------------------------------- input

function paintValue() {
  return state.tool === 'eraser' ? IGNORE : state.value;
}

canvas.addEventListener('contextmenu', (event) => event.preventDefault());

function capture(event) {
  try {
    canvas.setPointerCapture(event.pointerId);
  } catch {
    // a synthetic event's pointer is not active: nothing to capture
  }
}

canvas.addEventListener('pointerdown', (event) => {
  if (!state.editor) return;
  canvas.focus();
  const point = toImage(event);
  if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
    state.gesture = { kind: 'pan', sx: point.sx, sy: point.sy, view: { ...state.view } };
    canvas.classList.add('panning');
    capture(event);
    event.preventDefault();
    return;
  }
  if (state.tool === 'sam') {
    if (!inside(point)) return;
    if (event.button === 2) {
      state.prompt.points.push([point.x, point.y]);
      state.prompt.labels.push(0);
      requestDraw();
      decodePrompt();
    } else if (event.button === 0) {
      state.gesture = { kind: 'sam-box', start: point, box: null };
      capture(event);
    }
    return;
  }
  if (event.button !== 0) return;
  if (state.tool === 'fill') {
    if (inside(point)) state.editor.fill(point.x, point.y, state.value);
    return;
  }
  state.editor.beginStroke();
  state.editor.disc(point.x, point.y, state.brushRadius, paintValue());
  state.gesture = { kind: 'paint', last: point };
  capture(event);
});

canvas.addEventListener('pointermove', (event) => {
  if (!state.image) return;
  const point = toImage(event);
  state.pointer = point;
  $('status-pos').textContent = inside(point) ? `x ${Math.floor(point.x)}, y ${Math.floor(point.y)}` : '';
  const gesture = state.gesture;
  if (gesture && gesture.kind === 'pan') {
    state.view = { ...gesture.view, x: gesture.view.x + point.sx - gesture.sx, y: gesture.view.y + point.sy - gesture.sy };
  } else if (gesture && gesture.kind === 'paint') {
    state.editor.line(gesture.last.x, gesture.last.y, point.x, point.y, state.brushRadius, paintValue());
    gesture.last = point;
  } else if (gesture && gesture.kind === 'sam-box') {
    const { start } = gesture;
    const moved = Math.hypot(point.sx - start.sx, point.sy - start.sy) > DRAG_PIXELS;
    if (moved) {
      const clampX = (v) => Math.min(state.image.width, Math.max(0, v));
      const clampY = (v) => Math.min(state.image.height, Math.max(0, v));
      gesture.box = [clampX(Math.min(start.x, point.x)), clampY(Math.min(start.y, point.y)), clampX(Math.max(start.x, point.x)), clampY(Math.max(start.y, point.y))];
    }
  }
  requestDraw();
});

function endGesture() {
  const gesture = state.gesture;
  state.gesture = null;
  canvas.classList.remove('panning');
  if (!gesture) return;
  if (gesture.kind === 'paint') {
    state.editor.endStroke();
    updateStatus();
  } else if (gesture.kind === 'sam-box') {
    if (gesture.box && gesture.box[2] - gesture.box[0] >= 1 && gesture.box[3] - gesture.box[1] >= 1) {
      state.prompt.box = gesture.box;
    } else {
      state.prompt.points.push([gesture.start.x, gesture.start.y]);
      state.prompt.labels.push(1);
    }
    decodePrompt();
  }
  requestDraw();
}

canvas.addEventListener('pointerup', endGesture);
canvas.addEventListener('pointercancel', endGesture);
canvas.addEventListener('pointerleave', () => {
  state.pointer = null;
  requestDraw();
});

canvas.addEventListener(
  'wheel',
  (event) => {
    event.preventDefault();
    const point = toImage(event);
    zoomAt(Math.exp(-event.deltaY * 0.0015), point.sx, point.sy);
  },
  { passive: false },
);

function typing(target) {
  return target instanceof HTMLElement && (target.tagName === 'TEXTAREA' || (target.tagName === 'INPUT' && target.type !== 'range' && target.type !== 'checkbox'));
}

document.addEventListener('keydown', (event) => {
  if (typing(event.target)) return;
  const key = event.key;
  const control = event.ctrlKey || event.metaKey;
  if (control && key.toLowerCase() === 's') {
    event.preventDefault();
    save();
    return;
  }
  if (control && (key.toLowerCase() === 'y' || (key.toLowerCase() === 'z' && event.shiftKey))) {
    event.preventDefault();
    if (state.editor) state.editor.redo();
    updateStatus();
    return;
  }
  if (control && key.toLowerCase() === 'z') {
    event.preventDefault();
    if (state.editor) state.editor.undo();
    updateStatus();
    return;
  }
  if (control || event.altKey) return;
  if (/^[1-9]$/.test(key)) {
    const c = state.project.classes[Number(key) - 1];
    if (c) setValue(c.id);
  } else if (key === '0' || key === 'i') {
    setValue(IGNORE);
  } else if (key === 's') setTool('sam');
  else if (key === 'b') setTool('brush');
  else if (key === 'e') setTool('eraser');
  else if (key === 'f') setTool('fill');
  else if (key === 'm') {
    state.showMask = !state.showMask;
    $('show-mask').checked = state.showMask;
    requestDraw();
  } else if (key === '[' || key === ']') {
    state.brushRadius = Math.min(60, Math.max(1, state.brushRadius + (key === ']' ? 2 : -2)));
    $('brush-size').value = String(state.brushRadius * 2);
    updateStatus();
    requestDraw();
  } else if (key === 'Enter') {
    if (event.target instanceof HTMLButtonElement) return; // Enter on a focused button presses it
    commitPreview();
  } else if (key === 'Escape') clearPrompt();
  else if (key === 'n') next();
  else if (key === 'k') skip();
  else if (key === '+' || key === '=') zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2);
  else if (key === '-') zoomAt(0.8, canvas.clientWidth / 2, canvas.clientHeight / 2);
  else if (key === 'Home') fitView();
  else if (key === ' ') {
    if (event.target === canvas || event.target === document.body) event.preventDefault();
    state.spaceDown = true;
  } else if (key.startsWith('Arrow') && (event.target === canvas || event.target === document.body)) {
    event.preventDefault();
    const step = 60;
    const dx = key === 'ArrowLeft' ? step : key === 'ArrowRight' ? -step : 0;
    const dy = key === 'ArrowUp' ? step : key === 'ArrowDown' ? -step : 0;
    state.view = { ...state.view, x: state.view.x + dx, y: state.view.y + dy };
    requestDraw();
  }
});
document.addEventListener('keyup', (event) => {
  if (event.key === ' ') state.spaceDown = false;
});

for (const button of document.querySelectorAll('[data-tool]')) button.addEventListener('click', () => setTool(button.dataset.tool));
$('brush-size').addEventListener('input', (event) => {
  state.brushRadius = Math.max(0.5, Number(event.target.value) / 2);
  updateStatus();
});
$('opacity').addEventListener('input', (event) => {
  state.opacity = Number(event.target.value) / 100;
  requestDraw();
});
$('show-mask').addEventListener('change', (event) => {
  state.showMask = event.target.checked;
  requestDraw();
});
$('undo').addEventListener('click', () => {
  if (state.editor) state.editor.undo();
  updateStatus();
});
$('redo').addEventListener('click', () => {
  if (state.editor) state.editor.redo();
  updateStatus();
});
$('fit').addEventListener('click', fitView);
$('save').addEventListener('click', () => save());
$('next').addEventListener('click', next);
$('skip').addEventListener('click', skip);
$('sam-commit').addEventListener('click', commitPreview);
$('sam-clear').addEventListener('click', clearPrompt);
window.addEventListener('resize', () => requestDraw());
window.addEventListener('beforeunload', (event) => {
  if (dirty()) event.preventDefault();
});

// ---------------------------------------------------------------- start

async function main() {
  const started = performance.now();
  state.projectId = projectIdFromUrl();
  state.user = await requireUser();
  renderHeader(state.user, { projectId: state.projectId, current: 'annotate' });
  state.project = await api(`/projects/${state.projectId}`, { what: 'loading the project' });
  document.title = `Annotate ${state.project.name} · marslabel`;
  buildLut();
  buildPalette();
  state.value = state.project.classes[0].id;
  updateStatus();
  const samStarting = startSam();
  updateCounter();
  const wanted = Number(new URLSearchParams(window.location.search).get('image'));
  if (Number.isInteger(wanted) && wanted > 0) {
    await openImage(await api(`/projects/${state.projectId}/images/${wanted}`, { what: 'loading the image' }));
  } else {
    await nextFromQueue();
  }
  state.timings.interactiveMs = performance.now() - started;
  await samStarting;
}

main().catch((error) => {
  document.body.dataset.ready = 'error';
  reportError(error);
});
