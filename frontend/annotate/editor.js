// The mask being edited: brush discs and lines, flood fill, a SAM mask committed to a class. No DOM here.
// Every edit happens inside a stroke (begin → operations → end) and one stroke is one undo step (history.js
// keeps only the changed rectangle of each stroke, before and after).

import { StrokeHistory, copyBox, pasteBox } from './history.js';

export const IGNORE = 255;

function emptyRect() {
  return { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
}

function grow(rect, x0, y0, x1, y1) {
  rect.x0 = Math.min(rect.x0, x0);
  rect.y0 = Math.min(rect.y0, y0);
  rect.x1 = Math.max(rect.x1, x1);
  rect.y1 = Math.max(rect.y1, y1);
}

/** { x, y, w, h } of a rect grown by edits, or null when nothing was touched. */
function asBox(rect) {
  if (rect.x1 < rect.x0) return null;
  return { x: rect.x0, y: rect.y0, w: rect.x1 - rect.x0 + 1, h: rect.y1 - rect.y0 + 1 };
}

export class MaskEditor {
  /** `data`: Uint8Array(width × height) of class ids, 255 = ignore; edited in place. */
  constructor(width, height, data = null, { onChange = () => {} } = {}) {
    this.width = width;
    this.height = height;
    this.mask = data || new Uint8Array(width * height).fill(IGNORE);
    this.onChange = onChange;
    this.history = new StrokeHistory();
    this.stroke = null;
    this.revision = 0; // bumped on every change: "unsaved" = revision differs from the saved one
  }

  beginStroke() {
    if (this.stroke) this.endStroke();
    this.stroke = { before: this.mask.slice(), rect: emptyRect() };
  }

  /** Ends the stroke; returns true when it changed pixels (and so became an undo step). */
  endStroke() {
    const stroke = this.stroke;
    this.stroke = null;
    if (!stroke) return false;
    const box = asBox(stroke.rect);
    if (!box) return false;
    const before = copyBox(stroke.before, this.width, box);
    const after = copyBox(this.mask, this.width, box);
    if (before.every((value, i) => value === after[i])) return false;
    this.history.record({ box, before, after });
    return true;
  }

  _touched(x0, y0, x1, y1) {
    if (x1 < x0 || y1 < y0) return;
    if (this.stroke) grow(this.stroke.rect, x0, y0, x1, y1);
    this.revision += 1;
    this.onChange({ x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 });
  }

  _inStroke(operation) {
    const own = !this.stroke;
    if (own) this.beginStroke();
    operation();
    if (own) this.endStroke();
  }

  /** A filled disc of `radius` image pixels at (cx, cy). */
  disc(cx, cy, radius, value) {
    this._inStroke(() => {
      const r = Math.max(0.5, radius);
      const x0 = Math.max(0, Math.floor(cx - r));
      const x1 = Math.min(this.width - 1, Math.ceil(cx + r));
      const y0 = Math.max(0, Math.floor(cy - r));
      const y1 = Math.min(this.height - 1, Math.ceil(cy + r));
      const r2 = r * r;
      for (let y = y0; y <= y1; y += 1) {
        const dy = y + 0.5 - cy;
        const row = y * this.width;
        for (let x = x0; x <= x1; x += 1) {
          const dx = x + 0.5 - cx;
          if (dx * dx + dy * dy <= r2) this.mask[row + x] = value;
        }
      }
      this._touched(x0, y0, x1, y1);
    });
  }

  /** Discs along the segment, close enough to leave no gaps. */
  line(ax, ay, bx, by, radius, value) {
    this._inStroke(() => {
      const length = Math.hypot(bx - ax, by - ay);
      const step = Math.max(0.5, radius / 2);
      const count = Math.max(1, Math.ceil(length / step));
      for (let i = 0; i <= count; i += 1) this.disc(ax + ((bx - ax) * i) / count, ay + ((by - ay) * i) / count, radius, value);
    });
  }

  /** Flood fill (4-connected) of the region of equal value around (x, y) with `value`. */
  fill(x, y, value) {
    x = Math.floor(x);
    y = Math.floor(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const { width, height, mask } = this;
    const target = mask[y * width + x];
    if (target === value) return;
    this._inStroke(() => {
      const rect = emptyRect();
      const stack = [[x, y]];
      while (stack.length) {
        const [sx, sy] = stack.pop();
        let left = sx;
        const row = sy * width;
        if (mask[row + left] !== target) continue;
        while (left > 0 && mask[row + left - 1] === target) left -= 1;
        let right = sx;
        while (right < width - 1 && mask[row + right + 1] === target) right += 1;
        for (let i = left; i <= right; i += 1) mask[row + i] = value;
        grow(rect, left, sy, right, sy);
        for (const ny of [sy - 1, sy + 1]) {
          if (ny < 0 || ny >= height) continue;
          const nrow = ny * width;
          let inside = false;
          for (let i = left; i <= right; i += 1) {
            const match = mask[nrow + i] === target;
            if (match && !inside) stack.push([i, ny]);
            inside = match;
          }
        }
      }
      this._touched(rect.x0, rect.y0, rect.x1, rect.y1);
    });
  }

  /** Fill the inside of the polygon `points` ([[x, y], …] in image pixels, closed implicitly) with `value`:
   *  a pixel is inside when its centre is (even-odd rule, so a self-crossing outline leaves its overlaps out). */
  polygon(points, value) {
    if (points.length < 3) return;
    this._inStroke(() => {
      const rect = emptyRect();
      const ys = points.map(([, y]) => y);
      const yStart = Math.max(0, Math.floor(Math.min(...ys)));
      const yEnd = Math.min(this.height - 1, Math.ceil(Math.max(...ys)));
      for (let y = yStart; y <= yEnd; y += 1) {
        const cy = y + 0.5;
        const crossings = [];
        for (let i = 0; i < points.length; i += 1) {
          const [ax, ay] = points[i];
          const [bx, by] = points[(i + 1) % points.length];
          if ((ay <= cy && by > cy) || (by <= cy && ay > cy)) crossings.push(ax + ((cy - ay) / (by - ay)) * (bx - ax));
        }
        crossings.sort((a, b) => a - b);
        const row = y * this.width;
        for (let k = 0; k + 1 < crossings.length; k += 2) {
          const x0 = Math.max(0, Math.ceil(crossings[k] - 0.5));
          const x1 = Math.min(this.width - 1, Math.ceil(crossings[k + 1] - 0.5) - 1);
          if (x1 < x0) continue;
          this.mask.fill(value, row + x0, row + x1 + 1);
          grow(rect, x0, y, x1, y);
        }
      }
      this._touched(rect.x0, rect.y0, rect.x1, rect.y1);
    });
  }

  /** Every pixel back to ignore / unlabelled, as one undo step. */
  clear() {
    this._inStroke(() => {
      this.mask.fill(IGNORE);
      this._touched(0, 0, this.width - 1, this.height - 1);
    });
  }

  /** Set every pixel where `binary` (Uint8Array, 1 inside) is on to `value`: a SAM mask committed to a class. */
  apply(binary, value) {
    this._inStroke(() => {
      const rect = emptyRect();
      for (let y = 0; y < this.height; y += 1) {
        const row = y * this.width;
        for (let x = 0; x < this.width; x += 1) {
          if (binary[row + x]) {
            this.mask[row + x] = value;
            if (x < rect.x0) rect.x0 = x;
            if (x > rect.x1) rect.x1 = x;
            if (y < rect.y0) rect.y0 = y;
            rect.y1 = y;
          }
        }
      }
      this._touched(rect.x0, rect.y0, rect.x1, rect.y1);
    });
  }

  _restore(entry, values) {
    pasteBox(this.mask, this.width, entry.box, values);
    this.revision += 1;
    this.onChange(entry.box);
  }

  undo() {
    if (this.stroke) this.endStroke();
    const entry = this.history.takeUndo();
    if (!entry) return false;
    this._restore(entry, entry.before);
    return true;
  }

  redo() {
    const entry = this.history.takeRedo();
    if (!entry) return false;
    this._restore(entry, entry.after);
    return true;
  }
}
