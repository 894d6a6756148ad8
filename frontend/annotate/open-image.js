// The image open in the view and the edit of its mask: which image, how it was reached, the mask version the
// edit started from and whether it is saved. Written by load-save.js, read by the tools and the panel.

export const current = {
  image: null, // ImagePublic
  claim: null, // { rank, score } when the image came from the queue
  editor: null, // MaskEditor of the mask being edited
  baseVersion: null, // the mask version this edit started from (null: none)
  savedRevision: 0, // the editor's revision when last loaded or saved
  savedHere: false, // a version was saved from this page since the image was opened
  busy: false, // loading or saving: other loads and saves wait
};

/** The edit has changes not yet saved. */
export function dirty() {
  return Boolean(current.editor) && current.editor.revision !== current.savedRevision;
}
