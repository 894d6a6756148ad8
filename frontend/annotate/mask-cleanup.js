// A SAM mask cleaned as it is committed. SAM's mask is its 256×256 low-resolution logits scaled to the image, so
// its border wanders by about one low-resolution cell: two adjacent SAM masks leave a thin unlabelled seam between
// them, and the threshold leaves speckle (islands and pinholes of a few pixels). At commit:
//   1. islands of the new mask smaller than `minArea` pixels are dropped (8-connected);
//   2. holes in it smaller than `minArea` are filled, but only their unlabelled pixels: a labelled pixel inside a
//      hole was labelled on purpose (a small rock already marked inside the sand) and keeps its class;
//   3. an unlabelled pixel within `seam` pixels of the new mask and within `seam` pixels of an already-labelled
//      pixel (or of the image's edge) is claimed by the new mask: a gap that thin is SAM's border, not a region.
// Labelled pixels are never taken by 2 or 3; the mask itself (what SAM covered) still overwrites, as before.
// minArea is 2×2 low-resolution cells at the image's scale (at least 4 px), seam one cell (at least 1 px).
// Pure: no DOM, so the commit path and the tests call the same function.

const IGNORE = 255;

/** { minArea, seam } for an image of width × height. */
export function cleanupOptions(width, height) {
  const cell = Math.max(width, height) / 256;
  return { minArea: Math.max(4, Math.round(4 * cell * cell)), seam: Math.max(1, Math.round(cell)) };
}

function boundingBox(binary, width, height) {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y += 1) {
    const row = y * width;
    for (let x = 0; x < width; x += 1) {
      if (!binary[row + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? null : { x0, y0, x1, y1 };
}

/** Connected components of pixels where `inside(i)` holds, in a w × h window; calls `visit(pixels, touchesBorder)`
 *  for each (pixels: window indices). 8-connected when `diagonal`, else 4-connected. */
function components(w, h, inside, diagonal, visit) {
  const seen = new Uint8Array(w * h);
  const stack = [];
  const steps = diagonal ? [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]] : [[0, -1], [-1, 0], [1, 0], [0, 1]];
  for (let start = 0; start < w * h; start += 1) {
    if (seen[start] || !inside(start)) continue;
    seen[start] = 1;
    stack.push(start);
    const pixels = [];
    let border = false;
    while (stack.length) {
      const i = stack.pop();
      pixels.push(i);
      const x = i % w;
      const y = (i - x) / w;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) border = true;
      for (const [dx, dy] of steps) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const j = ny * w + nx;
        if (!seen[j] && inside(j)) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    visit(pixels, border);
  }
}

/** Dilation of a w × h 0/1 map by a (2r + 1)² square (Chebyshev distance ≤ r), separable running sums. */
function dilate(map, w, h, r) {
  const across = new Uint8Array(w * h);
  for (let y = 0; y < h; y += 1) {
    const row = y * w;
    let count = 0;
    for (let x = 0; x < Math.min(r, w); x += 1) count += map[row + x];
    for (let x = 0; x < w; x += 1) {
      if (x + r < w) count += map[row + x + r];
      if (x - r - 1 >= 0) count -= map[row + x - r - 1];
      across[row + x] = count > 0 ? 1 : 0;
    }
  }
  const out = new Uint8Array(w * h);
  for (let x = 0; x < w; x += 1) {
    let count = 0;
    for (let y = 0; y < Math.min(r, h); y += 1) count += across[y * w + x];
    for (let y = 0; y < h; y += 1) {
      if (y + r < h) count += across[(y + r) * w + x];
      if (y - r - 1 >= 0) count -= across[(y - r - 1) * w + x];
      out[y * w + x] = count > 0 ? 1 : 0;
    }
  }
  return out;
}

/**
 * The mask to commit: `binary` (Uint8Array width × height, non-zero = SAM says in) cleaned against `labels` (the
 * mask being edited, class ids, 255 = unlabelled; not changed here). Returns { mask, dropped, filled, claimed }:
 * the cleaned 0/1 mask and how many pixels each step took out or added.
 */
export function cleanSamMask(binary, labels, width, height, options = cleanupOptions(width, height)) {
  const { minArea, seam } = options;
  const mask = new Uint8Array(width * height);
  const box = boundingBox(binary, width, height);
  const result = { mask, dropped: 0, filled: 0, claimed: 0 };
  if (!box) return result;
  // Work in the mask's box grown by twice the seam and one more pixel (what step 3 can reach, and a ring of
  // outside around it so that a hole is told from the outside); clipped to the image.
  const margin = 2 * seam + 1;
  const ox = Math.max(0, box.x0 - margin);
  const oy = Math.max(0, box.y0 - margin);
  const w = Math.min(width, box.x1 + margin + 1) - ox;
  const h = Math.min(height, box.y1 + margin + 1) - oy;
  const at = (i) => (oy + Math.floor(i / w)) * width + ox + (i % w);
  const on = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i += 1) on[i] = binary[at(i)] ? 1 : 0;

  // 1. islands
  components(w, h, (i) => on[i] === 1, true, (pixels) => {
    if (pixels.length >= minArea) return;
    for (const i of pixels) on[i] = 0;
    result.dropped += pixels.length;
  });
  // 2. pinholes: off components that do not reach the window's border (the window has outside all round, except
  // where it meets the image's edge: a gap against the edge is left to step 3).
  components(w, h, (i) => on[i] === 0, false, (pixels, border) => {
    if (border || pixels.length >= minArea) return;
    for (const i of pixels) {
      if (labels[at(i)] !== IGNORE) continue;
      on[i] = 2; // filled: in the mask from here on, counted apart
      result.filled += 1;
    }
  });
  // 3. seams: unlabelled, near the new mask and near an old label or the image's edge.
  const inMask = new Uint8Array(w * h);
  const old = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i += 1) {
    inMask[i] = on[i] ? 1 : 0;
    old[i] = !on[i] && labels[at(i)] !== IGNORE ? 1 : 0;
  }
  const nearMask = dilate(inMask, w, h, seam);
  const nearOld = dilate(old, w, h, seam);
  for (let i = 0; i < w * h; i += 1) {
    if (on[i] || labels[at(i)] !== IGNORE || !nearMask[i]) continue;
    const x = ox + (i % w);
    const y = oy + Math.floor(i / w);
    const nearEdge = x < seam || y < seam || x >= width - seam || y >= height - seam;
    if (nearOld[i] || nearEdge) {
      on[i] = 3;
      result.claimed += 1;
    }
  }
  for (let i = 0; i < w * h; i += 1) if (on[i]) mask[at(i)] = 1;
  return result;
}
