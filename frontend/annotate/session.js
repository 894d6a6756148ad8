// Who is annotating which project, and the page's timings: set once at start, read by every other module.

import { IGNORE } from './editor.js';

export const session = {
  user: null,
  projectId: null,
  project: null, // ProjectPublic: its classes with ids, names and colours
};

/** Milliseconds measured by the page (read by tests and bench/webapp.py through window.annotator.timings). */
export const timings = {};

/** The class with id `value`, or undefined (ignore and unknown ids). */
export function classOf(value) {
  return session.project ? session.project.classes.find((item) => item.id === value) : undefined;
}

export function valueName(value) {
  if (value === IGNORE) return 'ignore';
  const c = classOf(value);
  return c ? c.name : `class ${value}`;
}

/** [r, g, b] drawn for `value`; white for ignore and unknown ids. */
export function valueColor(value) {
  if (value === IGNORE) return [255, 255, 255];
  const c = classOf(value);
  return c ? c.color : [255, 255, 255];
}
