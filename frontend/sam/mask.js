// Pure helpers of the SAM decoder: float16 embedding bytes to float32, and the 256×256 low-res logits to a
// mask at the image's size. No DOM and no runtime: usable in a worker and on the main thread alike.

let float16Table = null;

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Little-endian float16 values (as Uint16Array) → Float32Array. */
export function float16ToFloat32(halves) {
  if (typeof Float16Array === 'function') {
    // Native conversion where the browser has Float16Array (Chromium 135+, Firefox 129+): one pass in C++.
    return new Float32Array(new Float16Array(halves.buffer, halves.byteOffset, halves.length));
  }
  if (float16Table === null) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits += 1) float16Table[bits] = halfToFloat(bits);
  }
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i += 1) out[i] = float16Table[halves[i]];
  return out;
}

// For each output pixel along one axis: the two low-res cells and the weight of the second. SAM upsamples
// the logits to 1024², crops the scaled image and resizes that to the image (both bilinear); one bilinear
// sample at the composed coordinate gives the same mask up to a pixel on the border, at a fraction of the cost.
function axisTable(outSize, inputSize, lowResSize) {
  const first = new Int32Array(outSize);
  const second = new Int32Array(outSize);
  const weight = new Float32Array(outSize);
  const step = inputSize / (4 * outSize); // 4 = 1024 input pixels / 256 low-res cells
  for (let i = 0; i < outSize; i += 1) {
    const position = Math.min(Math.max((i + 0.5) * step - 0.5, 0), lowResSize - 1);
    const lower = Math.floor(position);
    first[i] = lower;
    second[i] = Math.min(lower + 1, lowResSize - 1);
    weight[i] = position - lower;
  }
  return { first, second, weight };
}

// The first and last index along an axis whose two cells touch [low, high]: outside it every sample
// interpolates logits that are all <= 0, so the pixel is off without computing it.
function span(table, low, high) {
  let begin = 0;
  while (begin < table.first.length && table.second[begin] < low) begin += 1;
  let end = table.first.length - 1;
  while (end >= begin && table.first[end] > high) end -= 1;
  return [begin, end];
}

function positiveBounds(lowRes, size) {
  let top = size;
  let bottom = -1;
  let left = size;
  let right = -1;
  for (let y = 0; y < size; y += 1) {
    const row = y * size;
    for (let x = 0; x < size; x += 1) {
      if (lowRes[row + x] > 0) {
        if (y < top) top = y;
        bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  return bottom < 0 ? null : { top, bottom, left, right };
}

/** 256×256 logits → Uint8Array(width × height), row-major, 1 where the upsampled logit is above 0. */
export function upsampleMask(lowRes, width, height, scale, lowResSize = 256) {
  const mask = new Uint8Array(width * height);
  const bounds = positiveBounds(lowRes, lowResSize);
  if (bounds === null) return mask;
  const xs = axisTable(width, Math.round(width * scale), lowResSize);
  const ys = axisTable(height, Math.round(height * scale), lowResSize);
  // Only the pixels near positive logits are interpolated: a mask covers a small part of a large image.
  const [xBegin, xEnd] = span(xs, bounds.left, bounds.right);
  const [yBegin, yEnd] = span(ys, bounds.top, bounds.bottom);
  for (let y = yBegin; y <= yEnd; y += 1) {
    const top = ys.first[y] * lowResSize;
    const bottom = ys.second[y] * lowResSize;
    const wy = ys.weight[y];
    const row = y * width;
    for (let x = xBegin; x <= xEnd; x += 1) {
      const left = xs.first[x];
      const right = xs.second[x];
      const wx = xs.weight[x];
      const upper = lowRes[top + left] + (lowRes[top + right] - lowRes[top + left]) * wx;
      const lower = lowRes[bottom + left] + (lowRes[bottom + right] - lowRes[bottom + left]) * wx;
      mask[row + x] = upper + (lower - upper) * wy > 0 ? 1 : 0;
    }
  }
  return mask;
}
