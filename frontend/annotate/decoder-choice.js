// Which SAM decoder answers the clicks: the one in this browser (frontend/sam/, a Web Worker) or the server's
// POST …/sam/predict. On a fast laptop the browser wins (no round trip); on a small one the server's native
// runtime can beat the browser's wasm (SAM.md: 2.7× here). So the page measures both once, on the first image
// whose embedding is open, and uses the faster; `?decoder=browser|server` forces one. The status bar says which.

import { api } from '../api.js';
import { decodeGrayPng } from './png.js';
import { session } from './session.js';

const PROBES = 3; // decodes per path; the median decides (the first of each warms caches and is not counted)

/** Decodes on the server, answering like SamClient.decode. */
export class ServerDecoder {
  constructor(image) {
    this.image = image;
  }

  async decode({ points = [], labels = [], box = null } = {}) {
    const started = performance.now();
    const { id, width, height } = this.image;
    const response = await api(`/projects/${session.projectId}/images/${id}/sam/predict`, {
      json: { points, labels, box },
      query: { wait_seconds: 10 },
      raw: true,
      what: 'SAM on the server',
    });
    if (response.status === 202) throw new Error('the server has no embedding of this image yet');
    const png = await decodeGrayPng(await response.arrayBuffer());
    if (png.width !== width || png.height !== height) throw new Error(`the server's mask is ${png.width}×${png.height}, the image ${width}×${height}`);
    const mask = new Uint8Array(png.data.length);
    for (let i = 0; i < mask.length; i += 1) mask[i] = png.data[i] > 127 ? 1 : 0;
    const score = Number(response.headers.get('X-SAM-Score'));
    return { mask, width, height, score, roundTripMs: performance.now() - started };
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeDecodes(decode, prompt) {
  await decode(prompt); // warm-up
  const times = [];
  for (let i = 0; i < PROBES; i += 1) {
    const started = performance.now();
    await decode(prompt);
    times.push(performance.now() - started);
  }
  return median(times);
}

/** The forced choice from the address (?decoder=browser|server), or null. */
export function forcedDecoder() {
  const value = new URLSearchParams(window.location.search).get('decoder');
  return value === 'browser' || value === 'server' ? value : null;
}

/**
 * Measure the browser's decoder (`client`, a SamClient with `image` open) and the server's on a click at the
 * image's centre; resolves with { chosen, browserMs, serverMs } (a path that fails is never chosen).
 */
export async function measureDecoders(client, image) {
  const prompt = { points: [[image.width / 2, image.height / 2]], labels: [1] };
  const server = new ServerDecoder(image);
  const browserMs = await timeDecodes((p) => client.decode(p), prompt).catch(() => null);
  const serverMs = await timeDecodes((p) => server.decode(p), prompt).catch(() => null);
  let chosen = 'browser';
  if (browserMs === null || (serverMs !== null && serverMs < browserMs)) chosen = 'server';
  if (browserMs === null && serverMs === null) chosen = null;
  return { chosen, browserMs, serverMs };
}
