// The canvas: the image under its mask overlay at a zoom and pan (the viewport), redrawn once per animation
// frame. Other modules add what they draw on top as layers: in image pixels (the SAM preview) or in screen
// pixels (prompts, the brush outline). Edits report the rectangle they changed; the next frame repaints it.

import { session } from './session.js';

const MIN_SCALE = 0.05;
const MAX_SCALE = 32;

export const canvas = document.getElementById('view');
const context = canvas.getContext('2d');

/** Image pixel (x, y) is drawn at screen (viewport.x + x · scale, viewport.y + y · scale), CSS pixels. */
export const viewport = { scale: 1, x: 0, y: 0 };
/** How the mask is shown, and how many frames were drawn (read by bench/webapp.py). */
export const display = {
  showMask: true,
  opacity: 0.55,
  outline: false, // only the borders between classes, the inside left clear
  hidden: new Set(), // class ids not drawn
  drawCount: 0,
};

const picture = { bitmap: null, width: 0, height: 0, mask: null };
const overlay = document.createElement('canvas');
const overlayContext = overlay.getContext('2d');
let overlayData = null;
let lut = new Uint32Array(256);

const imageLayers = []; // (context) => void, drawn in image pixels above the mask
const screenLayers = []; // (context, toScreen, scale) => void, drawn in CSS pixels on top
let renderStatus = () => {};

export function addImageLayer(paint) {
  imageLayers.push(paint);
}

export function addScreenLayer(paint) {
  screenLayers.push(paint);
}

/** The one function that refreshes the status bar and the controls (panel.js registers it). */
export function setStatusRenderer(render) {
  renderStatus = render;
}

export function updateStatus() {
  renderStatus();
}

export function littleEndianColor([r, g, b], alpha = 255) {
  return ((alpha << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

const IGNORE = 255;
const HATCH_PERIOD = 8; // ignore is drawn as diagonal white lines this many pixels apart, faint enough
const HATCH = littleEndianColor([255, 255, 255], 120); // to see the image through on an unlabelled one

/** The colour table of the overlay from the project's classes and the hidden ones: unknown ids transparent. */
export function buildColorTable() {
  lut = new Uint32Array(256);
  for (const c of session.project.classes) if (!display.hidden.has(c.id)) lut[c.id] = littleEndianColor(c.color);
}

function paintOverlay(box) {
  if (!overlayData) return;
  const { width, height, mask } = picture;
  const pixels = new Uint32Array(overlayData.data.buffer);
  const hatch = !display.hidden.has(IGNORE);
  const { outline } = display;
  for (let y = box.y; y < box.y + box.h; y += 1) {
    const row = y * width;
    for (let x = box.x; x < box.x + box.w; x += 1) {
      const value = mask[row + x];
      if (outline) {
        // A border pixel has a 4-neighbour of another value; the image's edge is no border.
        const border = (x > 0 && mask[row + x - 1] !== value) || (x < width - 1 && mask[row + x + 1] !== value)
          || (y > 0 && mask[row + x - width] !== value) || (y < height - 1 && mask[row + x + width] !== value);
        if (!border) {
          pixels[row + x] = 0;
          continue;
        }
      }
      if (value === IGNORE) pixels[row + x] = hatch && (x + y) % HATCH_PERIOD === 0 ? HATCH : 0;
      else pixels[row + x] = lut[value];
    }
  }
  overlayContext.putImageData(overlayData, 0, 0, box.x, box.y, box.w, box.h);
}

/** Repaint the whole overlay (after the colours, the hidden classes or the outline mode changed). */
export function repaintOverlay() {
  buildColorTable();
  if (overlayData) paintOverlay({ x: 0, y: 0, w: picture.width, h: picture.height });
  requestDraw();
}

// Edits only grow a dirty rectangle; the next frame repaints it once and refreshes the status line. Painting
// stamps many discs per pointer event, so doing either per disc would cost more than the drawing itself.
let pendingOverlay = null;
let statusStale = false;

/** The mask changed inside `box` ({ x, y, w, h }): repaint it and refresh the status at the next frame. */
export function maskChanged(changed) {
  // In the outline view a change also moves the borders of the pixels around it.
  const box = display.outline ? grownBox(changed) : changed;
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

function grownBox({ x, y, w, h }) {
  const x0 = Math.max(0, x - 1);
  const y0 = Math.max(0, y - 1);
  return { x: x0, y: y0, w: Math.min(picture.width, x + w + 1) - x0, h: Math.min(picture.height, y + h + 1) - y0 };
}

let frameRequested = false;
export function requestDraw() {
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
  if (!picture.bitmap) return;
  const { scale, x, y } = viewport;
  context.setTransform(ratio * scale, 0, 0, ratio * scale, ratio * x, ratio * y);
  context.imageSmoothingEnabled = scale < 2;
  context.drawImage(picture.bitmap, 0, 0);
  context.imageSmoothingEnabled = false;
  if (display.showMask) {
    context.globalAlpha = display.opacity;
    context.drawImage(overlay, 0, 0);
  }
  for (const paint of imageLayers) paint(context);
  context.globalAlpha = 1;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  const toScreen = (px, py) => [px * scale + x, py * scale + y];
  for (const paint of screenLayers) paint(context, toScreen, scale);
  display.drawCount += 1;
}

/** Show `bitmap` (width × height) with `mask` (Uint8Array of class ids, edited in place by the tools) fitted. */
export function showPicture(bitmap, width, height, mask) {
  if (picture.bitmap) picture.bitmap.close();
  Object.assign(picture, { bitmap, width, height, mask });
  overlay.width = width;
  overlay.height = height;
  overlayData = overlayContext.createImageData(width, height);
  pendingOverlay = null;
  paintOverlay({ x: 0, y: 0, w: width, h: height });
  fitView();
}

/** Nothing to show (the queue is empty). */
export function clearPicture() {
  Object.assign(picture, { bitmap: null, width: 0, height: 0, mask: null });
  overlayData = null;
  requestDraw();
}

export function fitView() {
  if (!picture.bitmap) return;
  const { clientWidth, clientHeight } = canvas;
  const scale = Math.min(clientWidth / picture.width, clientHeight / picture.height) * 0.96;
  Object.assign(viewport, {
    scale,
    x: (clientWidth - picture.width * scale) / 2,
    y: (clientHeight - picture.height * scale) / 2,
  });
  updateStatus();
  requestDraw();
}

export function zoomAt(factor, screenX, screenY) {
  const { scale, x, y } = viewport;
  const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
  Object.assign(viewport, { scale: next, x: screenX - ((screenX - x) * next) / scale, y: screenY - ((screenY - y) * next) / scale });
  updateStatus();
  requestDraw();
}

export function zoomAtCentre(factor) {
  zoomAt(factor, canvas.clientWidth / 2, canvas.clientHeight / 2);
}

export function panBy(dx, dy) {
  viewport.x += dx;
  viewport.y += dy;
  requestDraw();
}

/** Screen (sx, sy, CSS pixels in the canvas) and image (x, y) coordinates of a pointer event. */
export function toImage(event) {
  const rect = canvas.getBoundingClientRect();
  const sx = event.clientX - rect.left;
  const sy = event.clientY - rect.top;
  return { sx, sy, x: (sx - viewport.x) / viewport.scale, y: (sy - viewport.y) / viewport.scale };
}

export function inside(point) {
  return point.x >= 0 && point.y >= 0 && point.x < picture.width && point.y < picture.height;
}

window.addEventListener('resize', () => requestDraw());
