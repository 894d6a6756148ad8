// The side panel and the status bar: the class palette, tool buttons, sliders and toggles, and the one
// function that brings every control and status line up to date with the view's state.

import { h, rgb } from '../ui.js';
import { IGNORE } from './editor.js';
import { countAction } from './effort.js';
import { current, savedState } from './open-image.js';
import { clearPrompt, commitPreview, sam } from './sam-prompts.js';
import { selection, setBrushDiameter, setTool, setValue } from './selection.js';
import { wireImageList } from './image-list.js';
import { clearMask, next, save, skip } from './load-save.js';
import { session, valueName } from './session.js';
import { canvas, display, fitView, repaintOverlay, requestDraw, setStatusRenderer, updateStatus, viewport } from './view.js';

const $ = (id) => document.getElementById(id);

function renderStatus() {
  const { editor } = current;
  $('status-tool').textContent = `${selection.tool} · ${valueName(selection.value)}`;
  $('status-zoom').textContent = `zoom ${Math.round(viewport.scale * 100)}%`;
  $('status-saved').textContent = savedState();
  $('undo').disabled = !editor || !editor.history.canUndo;
  $('redo').disabled = !editor || !editor.history.canRedo;
  $('sam-commit').disabled = !sam.preview;
  $('clear-mask').disabled = !editor;
  $('brush-size-value').textContent = String(selection.brushRadius * 2);
  for (const button of document.querySelectorAll('[data-tool]')) button.setAttribute('aria-pressed', String(button.dataset.tool === selection.tool));
  for (const button of document.querySelectorAll('[data-value]')) button.setAttribute('aria-pressed', String(Number(button.dataset.value) === selection.value));
  canvas.className = selection.tool;
  $('sam-panel').hidden = selection.tool !== 'sam';
}

/** Show or hide one class (or ignore's hatching) in the overlay; drawing with it still works. */
export function toggleClassVisibility(value) {
  if (display.hidden.has(value)) display.hidden.delete(value);
  else display.hidden.add(value);
  for (const button of document.querySelectorAll(`[data-visibility="${value}"]`)) {
    const shown = !display.hidden.has(value);
    button.setAttribute('aria-pressed', String(shown));
    button.textContent = shown ? '◉' : '○';
  }
  repaintOverlay();
}

export function buildPalette() {
  const entries = session.project.classes.map((c, index) => ({ value: c.id, name: c.name, color: rgb(c.color), key: index < 9 ? String(index + 1) : '' }));
  entries.push({ value: IGNORE, name: 'ignore', color: 'repeating-linear-gradient(45deg,#fff 0 2px,#555 2px 5px)', key: '0' });
  $('palette').replaceChildren(
    ...entries.map((entry) =>
      h(
        'div',
        { class: 'palette-row' },
        h(
          'button',
          { dataset: { value: entry.value }, title: `${entry.name}${entry.key ? ` (${entry.key})` : ''}`, onclick: () => setValue(entry.value) },
          h('span', { class: 'swatch', style: `background:${entry.color}` }),
          entry.name,
          entry.key ? h('kbd', {}, entry.key) : '',
        ),
        h(
          'button',
          {
            class: 'visibility',
            dataset: { visibility: entry.value },
            'aria-pressed': 'true',
            'aria-label': `show ${entry.name}`,
            title: `Show or hide ${entry.name} in the view`,
            onclick: () => toggleClassVisibility(entry.value),
          },
          '◉',
        ),
      ),
    ),
  );
}

export function undo() {
  if (current.editor && current.editor.undo()) countAction('undos');
  updateStatus();
}

export function redo() {
  if (current.editor && current.editor.redo()) countAction('redos');
  updateStatus();
}

export function toggleMask() {
  display.showMask = !display.showMask;
  $('show-mask').checked = display.showMask;
  requestDraw();
}

export function toggleOutline() {
  display.outline = !display.outline;
  $('outline').checked = display.outline;
  repaintOverlay();
}

export function wireControls() {
  setStatusRenderer(renderStatus);
  for (const button of document.querySelectorAll('[data-tool]')) button.addEventListener('click', () => setTool(button.dataset.tool));
  $('brush-size').addEventListener('input', (event) => setBrushDiameter(Number(event.target.value)));
  $('opacity').addEventListener('input', (event) => {
    display.opacity = Number(event.target.value) / 100;
    requestDraw();
  });
  $('show-mask').addEventListener('change', (event) => {
    display.showMask = event.target.checked;
    requestDraw();
  });
  $('outline').addEventListener('change', (event) => {
    display.outline = event.target.checked;
    repaintOverlay();
  });
  $('clear-mask').addEventListener('click', clearMask);
  $('open-keys-help').addEventListener('click', () => $('keys-help').showModal());
  for (const button of document.querySelectorAll('dialog [data-close]')) button.addEventListener('click', () => button.closest('dialog').close());
  wireImageList();
  $('undo').addEventListener('click', undo);
  $('redo').addEventListener('click', redo);
  $('fit').addEventListener('click', fitView);
  $('save').addEventListener('click', () => save());
  $('next').addEventListener('click', next);
  $('skip').addEventListener('click', skip);
  $('sam-commit').addEventListener('click', commitPreview);
  $('sam-clear').addEventListener('click', clearPrompt);
}
