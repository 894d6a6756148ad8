// Undo and redo of strokes: each entry is the rectangle a stroke changed, its pixels before and after. No DOM.

const HISTORY_LIMIT = 200;

/** Copy of the `box` ({ x, y, w, h }) of a row-major `data` of `width` columns. */
export function copyBox(data, width, box) {
  const out = new Uint8Array(box.w * box.h);
  for (let row = 0; row < box.h; row += 1) {
    const start = (box.y + row) * width + box.x;
    out.set(data.subarray(start, start + box.w), row * box.w);
  }
  return out;
}

export function pasteBox(data, width, box, values) {
  for (let row = 0; row < box.h; row += 1) data.set(values.subarray(row * box.w, (row + 1) * box.w), (box.y + row) * width + box.x);
}

export class StrokeHistory {
  constructor(limit = HISTORY_LIMIT) {
    this.limit = limit;
    this.undoStack = [];
    this.redoStack = [];
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  /** A new step ({ box, before, after }): the oldest beyond the limit is forgotten, redo is no longer possible. */
  record(entry) {
    this.undoStack.push(entry);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack = [];
  }

  /** The step to undo (moved to the redo stack), or undefined. */
  takeUndo() {
    const entry = this.undoStack.pop();
    if (entry) this.redoStack.push(entry);
    return entry;
  }

  /** The step to redo (moved back to the undo stack), or undefined. */
  takeRedo() {
    const entry = this.redoStack.pop();
    if (entry) this.undoStack.push(entry);
    return entry;
  }
}
