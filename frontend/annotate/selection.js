// What the tools draw with: the active tool, the class (or ignore) and the brush size. Modules that depend on
// the choice (SAM drops its prompts on leaving the SAM tool, its preview takes the class colour) subscribe.

import { requestDraw, updateStatus } from './view.js';

export const TOOLS = ['sam', 'brush', 'eraser', 'fill', 'polygon'];
export const MAX_BRUSH_RADIUS = 60;

export const selection = {
  tool: 'sam',
  value: 0, // class id being drawn, or IGNORE
  brushRadius: 10,
};

const toolListeners = [];
const valueListeners = [];

export function onToolChange(listener) {
  toolListeners.push(listener);
}

export function onValueChange(listener) {
  valueListeners.push(listener);
}

export function setTool(tool) {
  selection.tool = tool;
  for (const listener of toolListeners) listener(tool);
  updateStatus();
  requestDraw();
}

export function setValue(value) {
  selection.value = value;
  for (const listener of valueListeners) listener(value);
  updateStatus();
}

/** Brush radius in image pixels, from the slider's diameter (no upper cap: the slider has its own). */
export function setBrushDiameter(diameter) {
  selection.brushRadius = Math.max(0.5, diameter / 2);
  updateStatus();
}

/** `[` and `]`: the radius in steps of 2, between 1 and MAX_BRUSH_RADIUS. */
export function stepBrush(direction) {
  selection.brushRadius = Math.min(MAX_BRUSH_RADIUS, Math.max(1, selection.brushRadius + 2 * direction));
  document.getElementById('brush-size').value = String(selection.brushRadius * 2);
  updateStatus();
  requestDraw();
}
