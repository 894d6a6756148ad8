// The image open in the view and the edit of its mask: which image, how it was reached, the mask version the
// edit started from and whether it is saved. Written by load-save.js, read by the tools and the panel.

export const current = {
  image: null, // ImagePublic
  claim: null, // { rank, score } when the image came from the queue
  editor: null, // MaskEditor of the mask being edited
  baseVersion: null, // the mask version this edit started from (null: none)
  baseSource: null, // its source ('human', 'sam', 'model') and, for a model's, the model version id
  baseModel: null,
  savedRevision: 0, // the editor's revision when last loaded or saved
  savedHere: false, // a version was saved from this page since the image was opened
  busy: false, // loading or saving: other loads and saves wait
};

/** What the status bar says of the mask the view holds. */
export function savedState() {
  if (!current.editor) return '';
  if (dirty()) return 'unsaved changes';
  if (!current.baseVersion) return 'no mask yet';
  if (current.baseSource === 'model') return `model pseudo-label (model ${current.baseModel ?? '?'}) · version ${current.baseVersion}`;
  return `saved · version ${current.baseVersion}`;
}

/** The edit has changes not yet saved. */
export function dirty() {
  return Boolean(current.editor) && current.editor.revision !== current.savedRevision;
}
