// The annotation view: the next image of the ranked queue on a canvas with its mask overlaid; SAM prompts
// decoded in the browser (frontend/sam/), brush, eraser, flood fill, undo/redo per stroke; saving a new mask
// version on top of the one it started from, with the conflict (409) explained and resolvable.
//
// This file only starts the page; each part lives in its own module:
//   session.js      the user, the project, the page's timings
//   view.js         the canvas: viewport, mask overlay, layers, the frame loop
//   selection.js    the tool, class and brush size in use
//   tools.js        pointer gestures: pan, SAM clicks and boxes, brush, eraser, fill, wheel zoom
//   sam-prompts.js  the SAM prompt, its preview and committing it; decoder-choice.js browser or server decoder
//   editor.js, history.js   the mask's pixels and the undo/redo of strokes
//   effort.js       the work the open image costs (active seconds, actions by kind), sent with each save
//   open-image.js   the open image and its edit; load-save.js opens, saves, resolves conflicts, next/skip
//   panel.js        the side panel and status bar; counter.js the labeled counter
//   keys.js         the key bindings, as a table

import { api } from '../api.js';
import { projectIdFromUrl, renderHeader, reportError, requireUser } from '../ui.js';
import { keepCounterCurrent, updateCounter } from './counter.js';
import { effortSnapshot } from './effort.js';
import { installKeyBindings } from './keys.js';
import { nextFromQueue, openImageById } from './load-save.js';
import { current } from './open-image.js';
import { buildPalette, wireControls } from './panel.js';
import { sam, startSam } from './sam-prompts.js';
import { selection } from './selection.js';
import { session, timings } from './session.js';
import { buildColorTable, display, updateStatus, viewport } from './view.js';

// For tests and the benchmark: read-only inspection of the view's state.
window.annotator = Object.freeze({
  get view() {
    return { ...viewport };
  },
  get image() {
    return current.image;
  },
  get editor() {
    return current.editor;
  },
  get preview() {
    return sam.preview;
  },
  get samImage() {
    return sam.image;
  },
  get decoderChoice() {
    return sam.choice;
  },
  get tool() {
    return selection.tool;
  },
  get value() {
    return selection.value;
  },
  get brushRadius() {
    return selection.brushRadius;
  },
  get showMask() {
    return display.showMask;
  },
  get drawCount() {
    return display.drawCount;
  },
  get timings() {
    return timings;
  },
  get effort() {
    return effortSnapshot(); // what the next save would send
  },
});

async function main() {
  const started = performance.now();
  wireControls();
  installKeyBindings();
  session.projectId = projectIdFromUrl();
  session.user = await requireUser();
  renderHeader(session.user, { projectId: session.projectId, current: 'annotate' });
  session.project = await api(`/projects/${session.projectId}`, { what: 'loading the project' });
  document.title = `Annotate ${session.project.name} · marslabel`;
  buildColorTable();
  buildPalette();
  selection.value = session.project.classes[0].id;
  updateStatus();
  const samStarting = startSam();
  updateCounter();
  keepCounterCurrent();
  const wanted = Number(new URLSearchParams(window.location.search).get('image'));
  if (Number.isInteger(wanted) && wanted > 0) await openImageById(wanted);
  else await nextFromQueue();
  timings.interactiveMs = performance.now() - started;
  await samStarting;
}

main().catch((error) => {
  document.body.dataset.ready = 'error';
  reportError(error);
});
