// Opening an image (from the queue or by id) with its latest mask version, and saving the edit as a new
// version on top of the one it started from; a stale save (409) is explained and can be reloaded or
// overwritten knowingly. Next and skip leave the image's claim.

import { ApiError, api } from '../api.js';
import { reportError, say } from '../ui.js';
import { showModelConfidence } from './confidence.js';
import { updateCounter } from './counter.js';
import { MaskEditor } from './editor.js';
import { effortSaved, effortSnapshot, startEffort, stopEffort } from './effort.js';
import { current, dirty } from './open-image.js';
import { decodeGrayPng, encodeGrayPng } from './png.js';
import { clearPrompt, openSamImage } from './sam-prompts.js';
import { session, timings } from './session.js';
import { canvas, clearPicture, maskChanged, requestDraw, showPicture, updateStatus } from './view.js';

const $ = (id) => document.getElementById(id);

async function loadBitmap(imageId) {
  const response = await api(`/projects/${session.projectId}/images/${imageId}/file`, { raw: true, what: 'loading the image' });
  return createImageBitmap(await response.blob());
}

/** The latest mask version; `blind` (a consensus second label) keeps it as the base to save on but shows none of
 * it, so the two labels of a consensus pair are made independently. */
async function loadLatestMask(image, blind = false) {
  const history = await api(`/projects/${session.projectId}/images/${image.id}/masks`, { what: 'loading the mask history' });
  if (!history.length) return { latest: null, mask: null };
  const latest = history.reduce((a, b) => (b.version > a.version ? b : a));
  if (blind) return { latest, mask: null };
  const response = await api(`/projects/${session.projectId}/images/${image.id}/masks/${latest.version}`, { raw: true, what: 'loading the mask' });
  const decoded = await decodeGrayPng(await response.arrayBuffer());
  if (decoded.width !== image.width || decoded.height !== image.height) {
    throw new Error(`the stored mask is ${decoded.width}×${decoded.height}, the image ${image.width}×${image.height}`);
  }
  return { latest, mask: decoded.data };
}

function describeSource(latest, blind = false) {
  if (blind) return 'Second, independent label for consensus: the first label is hidden. Label the image from scratch.';
  if (!latest) return 'No mask yet: start from scratch or with SAM.';
  if (latest.source === 'model') {
    const confidence = latest.confidence == null ? '' : `, confidence ${latest.confidence.toFixed(2)}`;
    return `Starting from the model pseudo-label (model ${latest.model_version_id ?? '?'}; mask version ${latest.version}${confidence}): correct it and save.`;
  }
  return `Starting from ${latest.source} mask version ${latest.version}.`;
}

/** Show `image` with its latest mask; `claim` holds rank/score when it came from the queue. */
export async function openImage(image, claim = null) {
  const started = performance.now();
  current.busy = true;
  document.body.dataset.ready = 'false';
  clearPrompt();
  current.image = image;
  current.claim = claim;
  current.savedHere = false;
  $('image-name').textContent = image.file_name;
  $('image-rank').textContent = claim && claim.rank != null ? `queue rank ${claim.rank} · score ${claim.score.toFixed(4)}` : claim ? 'queue: import order (no round yet)' : `image ${image.id}`;
  openSamImage(session.projectId, image);
  const blind = Boolean(claim && claim.consensus_second);
  const [bitmap, { latest, mask }] = await Promise.all([loadBitmap(image.id), loadLatestMask(image, blind)]);
  current.baseVersion = latest ? latest.version : null;
  current.baseSource = latest ? latest.source : null;
  current.baseModel = latest ? latest.model_version_id : null;
  $('mask-source').textContent = describeSource(latest, blind);
  showModelConfidence(image, blind ? null : latest); // its map loads beside; the image shows at once
  current.editor = new MaskEditor(image.width, image.height, mask, { onChange: maskChanged });
  current.savedRevision = current.editor.revision;
  showPicture(bitmap, image.width, image.height, current.editor.mask);
  startEffort(); // the work this image costs counts from here, sent with each save
  current.busy = false;
  timings.openMs = performance.now() - started;
  timings.readyAt = performance.now(); // since navigation start
  document.body.dataset.ready = 'true';
  document.body.dataset.imageId = String(image.id);
  showInUrl(image.id);
  updateStatus();
  canvas.focus();
}

/** The address names the open image, so that a reload or a shared link opens it again. */
function showInUrl(imageId) {
  const url = new URL(window.location.href);
  url.searchParams.set('project', String(session.projectId));
  url.searchParams.set('image', String(imageId));
  if (url.href !== window.location.href) window.history.replaceState(null, '', url);
}

export async function openImageById(imageId) {
  await openImage(await api(`/projects/${session.projectId}/images/${imageId}`, { what: 'loading the image' }));
}

/** Leave the open image as Next does (save if changed, give back a queue claim not saved here), open another. */
export async function jumpToImage(imageId) {
  if (current.busy) return;
  try {
    if (dirty() && !(await save())) return;
    if (current.image && current.claim && !current.savedHere && current.image.id !== imageId) {
      await api(`/projects/${session.projectId}/queue/skip`, { json: { image_id: current.image.id }, what: 'leaving the image' });
    }
    await openImageById(imageId);
  } catch (error) {
    reportError(error);
  }
}

/** Every pixel back to unlabelled, saved at once as a new version; Undo brings the pixels back (unsaved). */
export async function clearMask() {
  if (!current.editor || current.busy) return;
  current.editor.clear();
  if (await save()) $('mask-source').textContent = `Cleared: saved an empty mask as version ${current.baseVersion}; Undo brings the pixels back.`;
}

export async function nextFromQueue() {
  const answer = await api(`/projects/${session.projectId}/queue/next`, { method: 'POST', what: 'taking the next image' });
  if (!answer.image) {
    current.image = null;
    current.editor = null;
    stopEffort();
    clearPicture();
    $('image-name').textContent = 'Nothing left in the queue for you.';
    $('image-rank').textContent = '';
    $('mask-source').textContent = '';
    say('The queue is empty: every pool image is labeled, claimed by someone else, or skipped by you.', { kind: 'warning', timeoutMs: 0 });
    document.body.dataset.ready = 'true';
    requestDraw();
    updateStatus();
    return;
  }
  await openImage(answer.image, { rank: answer.rank, score: answer.score, consensus_second: answer.consensus_second });
  updateCounter(); // a round may have ended since the last image
}

async function postMask(baseVersion, effort) {
  const { image, editor } = current;
  const blob = await encodeGrayPng(editor.mask, image.width, image.height);
  const form = new FormData();
  form.append('mask', blob, `${image.file_name.replace(/\.[^.]*$/, '')}.png`);
  if (baseVersion != null) form.append('base_version', String(baseVersion));
  form.append('effort', JSON.stringify(effort));
  return api(`/projects/${session.projectId}/images/${image.id}/masks`, { form, what: 'saving the mask' });
}

function showConflict(error) {
  const item = say(
    `Not saved: someone saved this image while you were editing it.\n${error.detail}\n` +
      'Reload to see the newer version (your edits are dropped), or overwrite knowingly to save yours as a new ' +
      'version on top of it.',
    {
      kind: 'error',
      actions: [
        { label: 'Reload', id: 'conflict-reload', run: () => reloadImage() },
        { label: 'Overwrite knowingly', id: 'conflict-overwrite', run: () => save({ overwrite: true }) },
      ],
    },
  );
  item.classList.add('conflict');
  item.id = 'conflict';
}

/** Save a new version on top of the one this edit started from; with overwrite, on top of the latest. */
export async function save({ overwrite = false } = {}) {
  if (!current.editor || current.busy) return false;
  current.busy = true;
  try {
    let base = current.baseVersion;
    if (overwrite) {
      const history = await api(`/projects/${session.projectId}/images/${current.image.id}/masks`, { what: 'reading the mask history' });
      base = history.length ? Math.max(...history.map((m) => m.version)) : null;
    }
    const revision = current.editor.revision;
    const effort = effortSnapshot(); // since the image was opened or last saved
    const saved = await postMask(base, effort);
    effortSaved(effort);
    current.baseVersion = saved.version;
    current.baseSource = saved.source;
    current.baseModel = null;
    current.savedRevision = revision;
    current.savedHere = true;
    $('mask-source').textContent = `Saved by you as version ${saved.version}.`;
    say(`Saved as version ${saved.version}${overwrite ? ` (on top of version ${base})` : ''}.`, { timeoutMs: 3000 });
    updateCounter();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) showConflict(error);
    else reportError(error, 'saving the mask');
    return false;
  } finally {
    current.busy = false;
    updateStatus();
  }
}

async function reloadImage() {
  try {
    const image = await api(`/projects/${session.projectId}/images/${current.image.id}`, { what: 'reloading the image' });
    await openImage(image, current.claim);
    say('Reloaded the latest version.', { timeoutMs: 2500 });
  } catch (error) {
    reportError(error);
  }
}

/** Save if changed, leave the claim of an image not saved here, take the next image of the queue. */
export async function next() {
  if (current.busy) return;
  try {
    if (dirty() && !(await save())) return;
    if (current.image && current.claim && !current.savedHere) {
      await api(`/projects/${session.projectId}/queue/skip`, { json: { image_id: current.image.id }, what: 'leaving the image' });
    }
    await nextFromQueue();
  } catch (error) {
    reportError(error);
  }
}

export async function skip() {
  if (!current.image || current.busy) return;
  if (dirty() && !window.confirm('Skip this image and drop your unsaved changes?')) return;
  try {
    await api(`/projects/${session.projectId}/queue/skip`, { json: { image_id: current.image.id }, what: 'skipping the image' });
    say(`Skipped ${current.image.file_name}.`, { timeoutMs: 2500 });
    await nextFromQueue();
  } catch (error) {
    reportError(error);
  }
}

window.addEventListener('beforeunload', (event) => {
  if (dirty()) event.preventDefault();
});
