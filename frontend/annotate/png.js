// Exact single-channel PNG in and out. Masks are class ids (0..K-1, 255 = ignore): drawing a PNG on a canvas
// would go through colour management and RGBA, and canvas.toBlob writes RGBA, which the API refuses. So masks
// are decoded and encoded here, with the browser's own zlib (DecompressionStream / CompressionStream).

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
let crcTable = null;

function crc32(bytes) {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      let c = n;
      for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

async function through(stream, bytes) {
  const piped = new Blob([bytes]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(piped).arrayBuffer());
}

function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** A PNG of 8-bit grey (mode L) or 8-bit palette indices (mode P) → { width, height, data: Uint8Array }. */
export async function decodeGrayPng(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!SIGNATURE.every((value, i) => bytes[i] === value)) throw new Error('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat = [];
  while (offset < bytes.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      const [depth, colorType, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || (colorType !== 0 && colorType !== 3) || interlace !== 0) {
        throw new Error(`mask PNG must be 8-bit grey or palette, not interlaced (depth ${depth}, colour type ${colorType})`);
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = await through(new DecompressionStream('deflate'), new Blob(idat));
  const out = new Uint8Array(width * height);
  let previous = new Uint8Array(width);
  for (let y = 0; y < height; y += 1) {
    const start = y * (width + 1);
    const filter = raw[start];
    const line = raw.subarray(start + 1, start + 1 + width);
    const row = out.subarray(y * width, (y + 1) * width);
    for (let x = 0; x < width; x += 1) {
      const left = x > 0 ? row[x - 1] : 0;
      const up = previous[x];
      const upLeft = x > 0 ? previous[x - 1] : 0;
      let value = line[x];
      if (filter === 1) value += left;
      else if (filter === 2) value += up;
      else if (filter === 3) value += (left + up) >> 1;
      else if (filter === 4) value += paeth(left, up, upLeft);
      row[x] = value & 0xff;
    }
    previous = row;
  }
  return { width, height, data: out };
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i += 1) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Uint8Array(width × height) of class ids → a mode-L PNG Blob. */
export async function encodeGrayPng(data, width, height) {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = 0; // greyscale
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y += 1) {
    raw[y * (width + 1)] = 0; // filter: none (masks are runs; deflate handles them)
    raw.set(data.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  }
  const compressed = await through(new CompressionStream('deflate'), raw);
  return new Blob(
    [new Uint8Array(SIGNATURE), chunk('IHDR', header), chunk('IDAT', compressed), chunk('IEND', new Uint8Array(0))],
    { type: 'image/png' },
  );
}
