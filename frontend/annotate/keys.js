// The keyboard: one table from keys to actions. A chord is the key as KeyboardEvent.key names it, prefixed by
// 'ctrl+' (Ctrl or Cmd) and then 'shift+' for control chords, which match letters in either case. Plain keys
// ignore Shift ('+' needs it on many layouts); Alt, or Ctrl with an unbound key, does nothing here.

import { IGNORE } from './editor.js';
import { next, save, skip } from './load-save.js';
import { redo, toggleMask, undo } from './panel.js';
import { clearPrompt, commitPreview } from './sam-prompts.js';
import { setTool, setValue, stepBrush } from './selection.js';
import { session } from './session.js';
import { setSpaceDown } from './tools.js';
import { canvas, fitView, panBy, zoomAtCentre } from './view.js';

const PAN_STEP = 60; // screen pixels per arrow key

/** The page itself, not a control, has the focus: keys that would scroll or press a button act on the view. */
function onView(event) {
  return event.target === canvas || event.target === document.body;
}

function panWithArrow(dx, dy) {
  return (event) => {
    if (!onView(event)) return;
    event.preventDefault();
    panBy(dx, dy);
  };
}

function chooseClass(index) {
  return () => {
    const c = session.project.classes[index];
    if (c) setValue(c.id);
  };
}

/** { keys, run(event), help?, preventDefault? }: the first binding naming the chord runs. */
export const BINDINGS = [
  { keys: ['ctrl+s', 'ctrl+shift+s'], run: () => save(), preventDefault: true },
  { keys: ['ctrl+y', 'ctrl+shift+y', 'ctrl+shift+z'], run: redo, preventDefault: true },
  { keys: ['ctrl+z'], run: undo, preventDefault: true },
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ keys: [String(n)], run: chooseClass(n - 1) })),
  { keys: ['0', 'i'], run: () => setValue(IGNORE) },
  { keys: ['s'], run: () => setTool('sam') },
  { keys: ['b'], run: () => setTool('brush') },
  { keys: ['e'], run: () => setTool('eraser') },
  { keys: ['f'], run: () => setTool('fill') },
  { keys: ['m'], run: toggleMask },
  { keys: ['['], run: () => stepBrush(-1) },
  { keys: [']'], run: () => stepBrush(1) },
  {
    keys: ['Enter'],
    run: (event) => {
      if (event.target instanceof HTMLButtonElement) return; // Enter on a focused button presses it
      commitPreview();
    },
  },
  { keys: ['Escape'], run: clearPrompt },
  { keys: ['n'], run: next },
  { keys: ['k'], run: skip },
  { keys: ['+', '='], run: () => zoomAtCentre(1.25) },
  { keys: ['-'], run: () => zoomAtCentre(0.8) },
  { keys: ['Home'], run: fitView },
  {
    keys: [' '],
    run: (event) => {
      if (onView(event)) event.preventDefault();
      setSpaceDown(true);
    },
  },
  { keys: ['ArrowLeft'], run: panWithArrow(PAN_STEP, 0) },
  { keys: ['ArrowRight'], run: panWithArrow(-PAN_STEP, 0) },
  { keys: ['ArrowUp'], run: panWithArrow(0, PAN_STEP) },
  { keys: ['ArrowDown'], run: panWithArrow(0, -PAN_STEP) },
];

const byChord = new Map();
for (const binding of BINDINGS) for (const chord of binding.keys) if (!byChord.has(chord)) byChord.set(chord, binding);

export function chordOf(event) {
  if (event.ctrlKey || event.metaKey) return `ctrl+${event.shiftKey ? 'shift+' : ''}${event.key.toLowerCase()}`;
  if (event.altKey) return null;
  return event.key;
}

function typing(target) {
  return target instanceof HTMLElement && (target.tagName === 'TEXTAREA' || (target.tagName === 'INPUT' && target.type !== 'range' && target.type !== 'checkbox'));
}

export function installKeyBindings() {
  document.addEventListener('keydown', (event) => {
    if (typing(event.target)) return;
    const chord = chordOf(event);
    const binding = chord === null ? undefined : byChord.get(chord);
    if (!binding) return;
    if (binding.preventDefault) event.preventDefault();
    binding.run(event);
  });
  document.addEventListener('keyup', (event) => {
    if (event.key === ' ') setSpaceDown(false);
  });
}
