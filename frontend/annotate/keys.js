// The keyboard: one table from keys to actions, which also writes the Keys help. A chord is the key as
// KeyboardEvent.key names it, prefixed by 'ctrl+' (Ctrl or Cmd) and then 'shift+' for control chords, which
// match letters in either case. Plain keys ignore Shift ('+' and '?' need it on many layouts); Alt, or Ctrl
// with an unbound key, does nothing here.

import { h } from '../ui.js';
import { IGNORE } from './editor.js';
import { toggleImageList } from './image-list.js';
import { next, save, skip } from './load-save.js';
import { redo, toggleMask, toggleOutline, undo } from './panel.js';
import { cancelPolygon, closePolygon, dropLastCorner } from './polygon.js';
import { clearPrompt, commitPreview } from './sam-prompts.js';
import { selection, setTool, setValue, stepBrush } from './selection.js';
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

export function toggleKeysHelp() {
  const dialog = document.getElementById('keys-help');
  if (dialog.open) dialog.close();
  else dialog.showModal();
}

/** { keys, run(event), help: [keys as shown, what it does] (the first binding of a group carries it) }. */
export const BINDINGS = [
  { keys: ['ctrl+s', 'ctrl+shift+s'], run: () => save(), preventDefault: true, help: ['Ctrl+S', 'save a new version'] },
  { keys: ['ctrl+z'], run: undo, preventDefault: true, help: ['Ctrl+Z', 'undo'] },
  { keys: ['ctrl+y', 'ctrl+shift+y', 'ctrl+shift+z'], run: redo, preventDefault: true, help: ['Ctrl+Y, Ctrl+Shift+Z', 'redo'] },
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ keys: [String(n)], run: chooseClass(n - 1), help: n === 1 ? ['1 … 9', 'class'] : null })),
  { keys: ['0', 'i'], run: () => setValue(IGNORE), help: ['0, I', 'ignore (drawn hatched)'] },
  { keys: ['s'], run: () => setTool('sam'), help: ['S', 'SAM: click includes, right click excludes, drag a box'] },
  {
    keys: ['Enter'],
    run: (event) => {
      if (event.target instanceof HTMLButtonElement) return; // Enter on a focused button presses it
      if (selection.tool === 'polygon') closePolygon();
      else commitPreview();
    },
    help: ['Enter', 'commit the SAM mask; close the polygon'],
  },
  {
    keys: ['Escape'],
    run: () => {
      clearPrompt();
      cancelPolygon();
    },
    help: ['Esc', 'clear the SAM prompt or the polygon'],
  },
  { keys: ['b'], run: () => setTool('brush'), help: ['B', 'brush'] },
  { keys: ['e'], run: () => setTool('eraser'), help: ['E', 'eraser (back to unlabeled)'] },
  { keys: ['f'], run: () => setTool('fill'), help: ['F', 'flood fill'] },
  { keys: ['p'], run: () => setTool('polygon'), help: ['P', 'polygon: click corners, first corner or double-click fills'] },
  { keys: ['Backspace'], run: dropLastCorner, help: ['Backspace', 'drop the polygon\'s last corner'] },
  { keys: ['['], run: () => stepBrush(-1), help: ['[ ]', 'brush size'] },
  { keys: [']'], run: () => stepBrush(1) },
  { keys: ['m'], run: toggleMask, help: ['M', 'show or hide the mask'] },
  { keys: ['o'], run: toggleOutline, help: ['O', 'outlines only'] },
  { keys: ['n'], run: next, help: ['N', 'save if changed, next image'] },
  { keys: ['k'], run: skip, help: ['K', 'skip the image'] },
  { keys: ['l'], run: toggleImageList, help: ['L', 'the image list'] },
  { keys: ['?'], run: toggleKeysHelp, help: ['?', 'this help'] },
  { keys: ['+', '='], run: () => zoomAtCentre(1.25), help: ['+ − or wheel', 'zoom'] },
  { keys: ['-'], run: () => zoomAtCentre(0.8) },
  { keys: ['Home'], run: fitView, help: ['Home', 'fit the image'] },
  {
    keys: [' '],
    run: (event) => {
      if (onView(event)) event.preventDefault();
      setSpaceDown(true);
    },
    help: ['arrows, Space+drag, middle drag', 'pan'],
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
  return target instanceof HTMLElement && (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT'
    || (target.tagName === 'INPUT' && target.type !== 'range' && target.type !== 'checkbox'));
}

/** The Keys help, written from the table. */
export function renderKeysHelp() {
  const items = BINDINGS.filter((binding) => binding.help).map(({ help: [keys, what] }) => [h('dt', {}, h('kbd', {}, keys)), h('dd', {}, what)]);
  document.getElementById('keys-help-list').replaceChildren(...items.flat());
}

export function installKeyBindings() {
  renderKeysHelp();
  document.addEventListener('keydown', (event) => {
    if (typing(event.target)) return;
    const chord = chordOf(event);
    const binding = chord === null ? undefined : byChord.get(chord);
    if (!binding) return;
    // With a dialog open only its own toggle acts: the view's keys would act unseen behind it.
    if (document.querySelector('dialog[open]') && binding.run !== toggleKeysHelp && binding.run !== toggleImageList) return;
    if (binding.preventDefault) event.preventDefault();
    binding.run(event);
  });
  document.addEventListener('keyup', (event) => {
    if (event.key === ' ') setSpaceDown(false);
  });
}
