// Pointer input on the canvas: pan (middle drag or Space + drag), SAM clicks and boxes, brush and eraser
// strokes, flood fill, polygon corners; and the wheel zoom. One gesture at a time, from press to release.

import { IGNORE } from './editor.js';
import { countAction } from './effort.js';
import { current } from './open-image.js';
import { closePolygon, drawPolygonLayer, dropLastCorner, polygonClick } from './polygon.js';
import { addPoint, setBox, setDragBox } from './sam-prompts.js';
import { selection } from './selection.js';
import { addScreenLayer, canvas, inside, requestDraw, toImage, updateStatus, viewport, zoomAt } from './view.js';

const DRAG_PIXELS = 5; // a SAM press that moves further than this (screen px) is a box, else a click

export const pointer = {
  at: null, // last pointer position { sx, sy, x, y }
  gesture: null, // { kind: 'pan' | 'sam-box' | 'paint', … } while a button is held
  spaceDown: false, // Space held: a left drag pans
};

function paintValue() {
  return selection.tool === 'eraser' ? IGNORE : selection.value;
}

function capture(event) {
  try {
    canvas.setPointerCapture(event.pointerId);
  } catch {
    // a synthetic event's pointer is not active: nothing to capture
  }
}

function pointerDown(event) {
  if (!current.editor) return;
  canvas.focus();
  const point = toImage(event);
  if (event.button === 1 || (event.button === 0 && pointer.spaceDown)) {
    pointer.gesture = { kind: 'pan', sx: point.sx, sy: point.sy, view: { ...viewport } };
    canvas.classList.add('panning');
    capture(event);
    event.preventDefault();
    return;
  }
  if (selection.tool === 'sam') {
    if (!inside(point)) return;
    if (event.button === 2) {
      addPoint(point.x, point.y, 0);
    } else if (event.button === 0) {
      pointer.gesture = { kind: 'sam-box', start: point, box: null };
      capture(event);
    }
    return;
  }
  if (selection.tool === 'polygon') {
    if (event.button === 0) polygonClick(point, viewport.scale);
    else if (event.button === 2) dropLastCorner();
    return;
  }
  if (event.button !== 0) return;
  if (selection.tool === 'fill') {
    if (inside(point)) {
      current.editor.fill(point.x, point.y, selection.value);
      countAction('fills');
    }
    return;
  }
  current.editor.beginStroke();
  current.editor.disc(point.x, point.y, selection.brushRadius, paintValue());
  pointer.gesture = { kind: 'paint', last: point, eraser: selection.tool === 'eraser' };
  capture(event);
}

function pointerMove(event) {
  if (!current.image) return;
  const point = toImage(event);
  pointer.at = point;
  document.getElementById('status-pos').textContent = inside(point) ? `x ${Math.floor(point.x)}, y ${Math.floor(point.y)}` : '';
  const { gesture } = pointer;
  if (gesture && gesture.kind === 'pan') {
    Object.assign(viewport, { ...gesture.view, x: gesture.view.x + point.sx - gesture.sx, y: gesture.view.y + point.sy - gesture.sy });
  } else if (gesture && gesture.kind === 'paint') {
    current.editor.line(gesture.last.x, gesture.last.y, point.x, point.y, selection.brushRadius, paintValue());
    gesture.last = point;
  } else if (gesture && gesture.kind === 'sam-box') {
    const { start } = gesture;
    const moved = Math.hypot(point.sx - start.sx, point.sy - start.sy) > DRAG_PIXELS;
    if (moved) {
      const clampX = (v) => Math.min(current.image.width, Math.max(0, v));
      const clampY = (v) => Math.min(current.image.height, Math.max(0, v));
      gesture.box = [clampX(Math.min(start.x, point.x)), clampY(Math.min(start.y, point.y)), clampX(Math.max(start.x, point.x)), clampY(Math.max(start.y, point.y))];
      setDragBox(gesture.box);
    }
  }
  requestDraw();
}

function endGesture() {
  const { gesture } = pointer;
  pointer.gesture = null;
  setDragBox(null);
  canvas.classList.remove('panning');
  if (!gesture) return;
  if (gesture.kind === 'paint') {
    current.editor.endStroke();
    countAction(gesture.eraser ? 'eraser_strokes' : 'brush_strokes');
    updateStatus();
  } else if (gesture.kind === 'sam-box') {
    if (gesture.box && gesture.box[2] - gesture.box[0] >= 1 && gesture.box[3] - gesture.box[1] >= 1) setBox(gesture.box);
    else addPoint(gesture.start.x, gesture.start.y, 1);
  }
  requestDraw();
}

export function setSpaceDown(down) {
  pointer.spaceDown = down;
}

canvas.addEventListener('contextmenu', (event) => event.preventDefault());
canvas.addEventListener('pointerdown', pointerDown);
canvas.addEventListener('pointermove', pointerMove);
canvas.addEventListener('pointerup', endGesture);
canvas.addEventListener('dblclick', () => {
  if (selection.tool === 'polygon') closePolygon();
});
canvas.addEventListener('pointercancel', endGesture);
canvas.addEventListener('pointerleave', () => {
  pointer.at = null;
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

addScreenLayer(drawPolygonLayer(() => pointer.at));

// The brush outline follows the pointer, in screen pixels.
addScreenLayer((context, toScreen, scale) => {
  if ((selection.tool !== 'brush' && selection.tool !== 'eraser') || !pointer.at) return;
  const [sx, sy] = toScreen(pointer.at.x, pointer.at.y);
  context.beginPath();
  context.arc(sx, sy, Math.max(2, selection.brushRadius * scale), 0, Math.PI * 2);
  context.strokeStyle = '#fff';
  context.lineWidth = 1.5;
  context.stroke();
});
