// The work an image costs, counted while it is open and sent with each save (the masks API's `effort` field):
// active seconds and actions by kind since the image was opened or last saved. No DOM beyond the input listeners.
//
// Active time: the image open, the page visible and focused, and some input (pointer, key, wheel) in the last
// IDLE_MS. Between two inputs at most IDLE_MS counts, so a coffee break costs 30 s, not 10 minutes; after the
// last input, up to IDLE_MS counts until the save. Losing focus or visibility stops the clock until the next input.

export const IDLE_MS = 30_000;

/** The kinds counted, as the API names them (server/effort_schemas.py). */
export const ACTION_KINDS = [
  'sam_positive_clicks',
  'sam_negative_clicks',
  'sam_boxes',
  'sam_commits',
  'brush_strokes',
  'eraser_strokes',
  'fills',
  'polygons',
  'undos',
  'redos',
];

const tally = {
  open: false, // an image is open: time and actions count
  activeMs: 0, // settled active time
  lastInput: null, // performance.now() of the latest input that counted; null: the clock is stopped
  counts: Object.fromEntries(ACTION_KINDS.map((kind) => [kind, 0])),
};

function settle(now) {
  if (tally.lastInput !== null) tally.activeMs += Math.min(now - tally.lastInput, IDLE_MS);
  tally.lastInput = null;
}

function pageActive() {
  return !document.hidden && document.hasFocus();
}

function onInput() {
  if (!tally.open || !pageActive()) return;
  const now = performance.now();
  settle(now);
  tally.lastInput = now;
}

function onPause() {
  settle(performance.now());
}

/** Count one action of `kind` (one of ACTION_KINDS) on the open image. */
export function countAction(kind) {
  if (!tally.open) return;
  if (!(kind in tally.counts)) throw new Error(`unknown effort kind ${kind}`);
  tally.counts[kind] += 1;
  onInput(); // an action is input, also when it came from a button
}

/** A new image is open: everything counts from zero. */
export function startEffort() {
  tally.open = true;
  tally.activeMs = 0;
  tally.counts = Object.fromEntries(ACTION_KINDS.map((kind) => [kind, 0]));
  tally.lastInput = pageActive() ? performance.now() : null;
}

/** No image is open (the queue is empty): nothing counts. */
export function stopEffort() {
  settle(performance.now());
  tally.open = false;
}

/** What the open image has cost so far: { active_seconds, ...counts } (the `effort` of a save). */
export function effortSnapshot() {
  const now = performance.now();
  const pending = tally.lastInput === null ? 0 : Math.min(now - tally.lastInput, IDLE_MS);
  return {
    active_seconds: Math.round((tally.activeMs + pending) / 100) / 10,
    ...tally.counts,
  };
}

/** A save sent `snapshot` and was stored: what it counted is taken off, so the next save counts only what follows
 * (what happened while the save was on its way stays). */
export function effortSaved(snapshot) {
  settle(performance.now());
  tally.activeMs = Math.max(0, tally.activeMs - snapshot.active_seconds * 1000);
  for (const kind of ACTION_KINDS) tally.counts[kind] = Math.max(0, tally.counts[kind] - snapshot[kind]);
  tally.lastInput = pageActive() ? performance.now() : null;
}

for (const type of ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart']) {
  window.addEventListener(type, onInput, { capture: true, passive: true });
}
window.addEventListener('blur', onPause);
document.addEventListener('visibilitychange', () => {
  if (document.hidden) onPause();
});
