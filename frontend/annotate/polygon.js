// The polygon tool: corners clicked one by one; closing the outline (click on the first corner, double-click,
// Enter) fills its inside with the class as one undo step. Right click or Backspace drops the last corner.

import { countAction } from './effort.js';
import { current } from './open-image.js';
import { onToolChange, selection } from './selection.js';
import { requestDraw, updateStatus } from './view.js';

const CLOSE_PIXELS = 8; // a click this close (screen px) to the first corner closes the outline
const SAME_PIXELS = 3; // a click this close to the last corner adds none (a double-click's second click)

export const polygon = { points: [] };

function clamp(point) {
  const { width, height } = current.image;
  return [Math.min(width, Math.max(0, point.x)), Math.min(height, Math.max(0, point.y))];
}

/** A left click at `point` ({ sx, sy, x, y }): a new corner, or closing the outline on the first one. */
export function polygonClick(point, scale) {
  const { points } = polygon;
  if (points.length >= 3) {
    const [fx, fy] = points[0];
    if (Math.hypot((fx - point.x) * scale, (fy - point.y) * scale) <= CLOSE_PIXELS) {
      closePolygon();
      return;
    }
  }
  if (points.length) {
    const [lx, ly] = points[points.length - 1];
    if (Math.hypot((lx - point.x) * scale, (ly - point.y) * scale) <= SAME_PIXELS) return;
  }
  points.push(clamp(point));
  requestDraw();
}

/** Fill the outline drawn so far (three corners at least) with the class; returns whether it filled. */
export function closePolygon() {
  const { points } = polygon;
  polygon.points = [];
  requestDraw();
  if (points.length < 3 || !current.editor) return false;
  current.editor.polygon(points, selection.value);
  countAction('polygons');
  updateStatus();
  return true;
}

export function dropLastCorner() {
  polygon.points.pop();
  requestDraw();
}

export function cancelPolygon() {
  polygon.points = [];
  requestDraw();
}

onToolChange(cancelPolygon);

/** The screen layer of the outline being drawn, with a rubber band to the pointer (`pointerAt()`). */
export function drawPolygonLayer(pointerAt) {
  return (context, toScreen) => {
    const { points } = polygon;
    if (selection.tool !== 'polygon' || !points.length) return;
    context.beginPath();
    points.forEach(([x, y], i) => {
      const [sx, sy] = toScreen(x, y);
      if (i === 0) context.moveTo(sx, sy);
      else context.lineTo(sx, sy);
    });
    const at = pointerAt();
    if (at) context.lineTo(...toScreen(at.x, at.y));
    context.strokeStyle = '#ffe14d';
    context.lineWidth = 2;
    context.stroke();
    points.forEach(([x, y], i) => {
      const [sx, sy] = toScreen(x, y);
      context.beginPath();
      context.arc(sx, sy, i === 0 ? 6 : 4, 0, Math.PI * 2);
      context.fillStyle = i === 0 ? '#ffe14d' : '#fff';
      context.fill();
    });
  };
}
