// Click-to-mask in the browser: the SAM prompt decoder runs in a Web Worker (decoder-worker.js) against the
// image embedding that the API computed once (GET .../sam/embedding, float16). No round trip per click.
//
//   const sam = new SamClient({ token });
//   await sam.start();                                  // fetch the decoder, start the warm session
//   const image = await sam.openImage(projectId, imageId);
//   const { mask, width, height, score, lowRes } = await sam.decode({ points: [[x, y]], labels: [1] });
//   await sam.decode({ points: [[x, y], [u, v]], labels: [1, 0], maskInput: lowRes });   // refine
//
// Points and boxes are in image pixels (x, y); labels 1 = include, 0 = exclude; a box is [x0, y0, x1, y1].
// `mask` is a Uint8Array(width × height), 1 inside; `lowRes` the 256×256 logits to pass back as maskInput.

/** The decoder file the API serves from the model folder; fetch-models makes it (see README, SAM). */
export const DEFAULT_DECODER = 'sam.lowres.int8.onnx';
/** Names the decoder that matches the served model (the default, or an official checkpoint's export). */
export const MODELS_MANIFEST = 'manifest.json';
const LOW_RES_VALUES = 256 * 256;

export class SamError extends Error {}

// The files the worker cannot start without; a worker that fails to load is diagnosed by asking for each.
const RUNTIME_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

function defaultUrl(relative) {
  return new URL(relative, import.meta.url).href;
}

function checkPrompt({ points = [], labels = [], box = null, maskInput = null }, image) {
  if (points.length === 0 && box == null) throw new SamError('empty prompt: give at least one point or a box');
  if (points.length !== labels.length) throw new SamError(`${points.length} points but ${labels.length} labels`);
  labels.forEach((label, i) => {
    if (label !== 0 && label !== 1) throw new SamError(`point ${i} has label ${label}; use 1 (include) or 0 (exclude)`);
  });
  points.forEach(([x, y], i) => {
    if (!(x >= 0 && x <= image.width && y >= 0 && y <= image.height)) {
      throw new SamError(`point ${i} (${x}, ${y}) is outside the ${image.width}×${image.height} image`);
    }
  });
  if (box != null) {
    const [x0, y0, x1, y1] = box;
    if (!(x0 >= 0 && x0 < x1 && x1 <= image.width && y0 >= 0 && y0 < y1 && y1 <= image.height)) {
      throw new SamError(`box ${box} is not a box inside the ${image.width}×${image.height} image`);
    }
  }
  if (maskInput != null && maskInput.length !== LOW_RES_VALUES) {
    throw new SamError(`maskInput must hold 256×256 values, got ${maskInput.length}`);
  }
}

export class SamClient {
  /**
   * @param {object} options
   * @param {string} options.token bearer token of a user who may use SAM
   * @param {string} [options.apiBase] the API prefix, default '/api/v1'
   * @param {string} [options.decoderUrl] default: the one the model folder's manifest.json names for the served
   *   model (DEFAULT_DECODER where the server has no manifest)
   * @param {string} [options.runtimeUrl] folder of the vendored onnxruntime-web files
   * @param {number} [options.numThreads] wasm threads (capped by the cores); fixed once started
   * @param {string} [options.model] the SAM model id the decoder belongs to; the API checks it
   * @param {boolean} [options.allowSpinning] let idle runtime threads spin (onnxruntime's default; here false)
   * @param {number} [options.warmUpRuns] decodes on a blank embedding at start, default 3
   */
  constructor({
    token, apiBase = '/api/v1', decoderUrl, runtimeUrl, numThreads, model, allowSpinning, warmUpRuns,
  } = {}) {
    this.token = token;
    this.apiBase = apiBase;
    // Absolute URLs: the worker would resolve relative ones against its own script, not this page.
    const page = self.location.href;
    this.decoderUrl = decoderUrl ? new URL(decoderUrl, page).href : null; // null: ask the manifest in start()
    this.runtimeUrl = runtimeUrl ? new URL(runtimeUrl, page).href : defaultUrl('../vendor/onnxruntime-web/');
    this.numThreads = numThreads;
    this.model = model;
    this.allowSpinning = allowSpinning;
    this.warmUpRuns = warmUpRuns;
    this.image = null;
    this.worker = null;
    this.pending = new Map();
    this.nextId = 1;
    this.failure = null;
  }

  _call(kind, body, transfer = []) {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId;
    this.nextId += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, kind, body }, transfer);
    });
  }

  _answer({ data: { id, ok, body, error } }) {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    if (ok) waiting.resolve(body);
    else waiting.reject(new SamError(error));
  }

  /** Start the worker and its decoder session (once); resolves with the runtime's facts and timings. */
  start() {
    if (!this.started) this.started = this._start();
    return this.started;
  }

  // A decoder must match the model whose embeddings it decodes: with an official SAM checkpoint configured the
  // server serves that checkpoint's exported decoder, so the manifest names the file and the model id (which
  // openImage then asks the API to check). A server without a manifest serves only the default pair.
  async _servedDecoder() {
    const url = defaultUrl(`../models/${MODELS_MANIFEST}`);
    const response = await fetch(url);
    if (response.status === 404) {
      this.decoderUrl = defaultUrl(`../models/${DEFAULT_DECODER}`);
      return;
    }
    if (!response.ok) throw new SamError(`${url}: HTTP ${response.status}`);
    const { model, decoder, problem } = await response.json();
    if (!decoder) throw new SamError(`the server has no browser decoder for SAM model ${model}: ${problem}`);
    this.decoderUrl = new URL(decoder, url).href;
    if (this.model == null) this.model = model;
  }

  // The decoder file and model id, once: openImage needs the model id before it asks for an embedding.
  _decoderKnown() {
    if (!this.known) this.known = this.decoderUrl === null ? this._servedDecoder() : Promise.resolve();
    return this.known;
  }

  async _start() {
    await this._decoderKnown();
    this.worker = new Worker(defaultUrl('./decoder-worker.js'), { type: 'module' });
    this.worker.onmessage = (event) => this._answer(event);
    this.worker.onerror = async (event) => {
      event.preventDefault();
      this.failure = await this._diagnosed(new SamError(`decoder worker failed: ${event.message || 'could not load'}`));
      for (const { reject } of this.pending.values()) reject(this.failure);
      this.pending.clear();
    };
    const init = {
      runtimeUrl: this.runtimeUrl,
      decoderUrl: this.decoderUrl,
      numThreads: this.numThreads,
      allowSpinning: this.allowSpinning,
      warmUpRuns: this.warmUpRuns,
    };
    return this._call('init', init).catch(async (error) => {
      throw await this._diagnosed(error);
    });
  }

  // A failed start names the runtime or decoder files the server does not have, where that is the cause.
  async _diagnosed(error) {
    const urls = [...RUNTIME_FILES.map((name) => new URL(name, this.runtimeUrl).href), this.decoderUrl];
    const missing = [];
    for (const url of urls) {
      const answer = await fetch(url).catch(() => null);
      if (answer !== null && answer.body) answer.body.cancel(); // only the status is wanted
      if (answer === null || !answer.ok) missing.push(url);
    }
    if (missing.length === 0) return error;
    const names = missing.join(', ');
    return new SamError(`the SAM decoder cannot start: missing on the server: ${names} (run marslabel fetch-models)`);
  }

  async _fetchEmbedding(url, timeoutMs) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const response = await fetch(url, { headers: { Authorization: `Bearer ${this.token}` } });
      if (response.status === 200) return response;
      if (response.status !== 202) {
        let detail = await response.text();
        try {
          detail = JSON.parse(detail).detail ?? detail;
        } catch {
          // not JSON: keep the text
        }
        throw new SamError(`embedding: HTTP ${response.status}: ${detail}`);
      }
      // Still being computed by a worker job: wait as the server asks, then ask again.
      if (performance.now() > deadline) throw new SamError(`embedding not ready after ${timeoutMs} ms`);
      const retry = Number(response.headers.get('Retry-After') || '1');
      await new Promise((resolve) => setTimeout(resolve, retry * 1000));
    }
  }

  /** Fetch the image's embedding (float16) and hand it to the decoder; later decodes use this image. */
  async openImage(projectId, imageId, { waitSeconds = 2, timeoutMs = 120000 } = {}) {
    // The decoder session starts while the embedding is fetched (or computed on demand): neither waits for the
    // other. A failed start is reported where it is awaited below, or by the next call that awaits start().
    const starting = this.start();
    starting.catch(() => {});
    await this._decoderKnown();
    const started = performance.now();
    const query = new URLSearchParams({ wait_seconds: String(waitSeconds) });
    if (this.model) query.set('model', this.model);
    const url = `${this.apiBase}/projects/${projectId}/images/${imageId}/sam/embedding?${query}`;
    const response = await this._fetchEmbedding(url, timeoutMs);
    const bytes = await response.arrayBuffer();
    const size = bytes.byteLength; // before the transfer below empties it
    const fetched = performance.now();
    const [height, width] = response.headers.get('X-SAM-Original-Size').split(',').map(Number);
    const image = {
      projectId,
      imageId,
      width,
      height,
      scale: Number(response.headers.get('X-SAM-Scale')),
      model: response.headers.get('X-SAM-Model'),
      dtype: response.headers.get('X-SAM-Dtype'),
    };
    await starting;
    this.image = null; // a decode between here and the worker's answer would use the previous image
    // The bytes are transferred, not copied: this thread does not keep them.
    const { convertMs } = await this._call('embedding', { bytes, ...image }, [bytes]);
    this.image = image;
    return { ...image, bytes: size, fetchMs: fetched - started, convertMs, openMs: performance.now() - started };
  }

  /**
   * Decode a prompt on the open image. `output: 'low_res'` skips the full-size mask (for refinement only).
   * Resolves with { mask, width, height, score, lowRes, decodeMs (session.run), totalMs (in the worker),
   * roundTripMs (from this call) }.
   */
  async decode({ points = [], labels = [], box = null, maskInput = null, output = 'mask' } = {}) {
    if (this.image === null) throw new SamError('no image open: call openImage first');
    checkPrompt({ points, labels, box, maskInput }, this.image);
    const started = performance.now();
    // maskInput is copied by postMessage (not transferred), so the caller may keep refining with it.
    const answer = await this._call('decode', {
      points: points.map(([x, y]) => [Number(x), Number(y)]),
      labels: labels.map(Number),
      box: box == null ? null : box.map(Number),
      maskInput: maskInput == null ? null : Float32Array.from(maskInput),
      output,
    });
    return { ...answer, roundTripMs: performance.now() - started };
  }

  /** Stop the worker; a later start() begins again. */
  close() {
    if (this.worker) this.worker.terminate();
    for (const { reject } of this.pending.values()) reject(new SamError('closed'));
    this.pending.clear();
    this.worker = null;
    this.started = null;
    this.failure = null;
    this.image = null;
  }
}
