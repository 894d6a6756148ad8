// The pseudo-label dialog: before a model labels the images without a human label, the lead sees the model,
// its validation mIoU, how many images it will touch (and how many of those annotators hold now: skipped,
// left for a later run) and sets the confidence threshold, the project's default filled in.

import { api } from '../api.js';
import { h, reportError } from '../ui.js';

const WEAK_MIOU = 0.3; // below this the model's labels cost more correcting than they save: said in the dialog

function dialogElement() {
  let dialog = document.getElementById('pseudo-label-dialog');
  if (!dialog) {
    dialog = h('dialog', { id: 'pseudo-label-dialog', 'aria-labelledby': 'pseudo-label-title' });
    document.body.append(dialog);
  }
  return dialog;
}

function percent(value) {
  return `${(value * 100).toFixed(1)}%`;
}

/** Ask, then start a pseudo-label job with `model`; `onStarted(job)` follows it. */
export async function openPseudoLabelDialog(projectId, model, onStarted) {
  let plan;
  try {
    plan = await api(`/projects/${projectId}/pseudo-labels/plan`, { query: { model_version_id: model.id }, what: 'planning pseudo-labels' });
  } catch (error) {
    reportError(error);
    return;
  }
  const dialog = dialogElement();
  const threshold = h('input', { id: 'pl-threshold', type: 'number', min: 0, max: 1, step: 0.05, value: plan.threshold, required: true });
  const start = h('button', { id: 'pl-start', class: 'primary', type: 'submit' }, `Label ${plan.images - plan.claimed} images`);
  const cancel = h('button', { id: 'pl-cancel', type: 'button', onclick: () => dialog.close() }, 'Cancel');
  const miou = plan.val_miou == null ? 'val mIoU unknown' : `val mIoU ${percent(plan.val_miou)}${plan.validation_images ? ` on ${plan.validation_images} images` : ''}`;
  const weak = plan.val_miou != null && plan.val_miou < WEAK_MIOU;
  const teacher = plan.teacher_miou == null ? '' : ` (its teacher: ${percent(plan.teacher_miou)})`;
  const form = h(
    'form',
    { method: 'dialog', class: 'pseudo-label-form' },
    h('div', { class: 'dialog-head' }, h('h2', { id: 'pseudo-label-title' }, `Pseudo-label with model #${plan.model_version_id}`)),
    h('p', { id: 'pl-model' }, `Model #${plan.model_version_id}: ${plan.method}${plan.round_id != null ? `, round ${plan.round_id}` : ''}, trained on ${plan.labeled_count} labeled images · `, h('strong', { id: 'pl-miou' }, miou), plan.self_trained ? h('span', { id: 'pl-self-trained' }, ` · self-trained${teacher}`) : ''),
    plan.self_trained ? '' : h('p', { class: 'message', id: 'pl-suggest-self-training' }, 'Not self-trained. On the dev benchmark a self-trained student beat the model it learnt from in almost every run, mostly by 4 to 14 mIoU points: for labelling the rest, a round with "Self-train the model" first is likely worth its time.'),
    weak ? h('p', { class: 'message warning', id: 'pl-weak' }, `A weak model: below ${percent(WEAK_MIOU)} val mIoU its labels may need more correcting than they save. Consider a higher threshold.`) : '',
    h('p', { id: 'pl-images' }, `It will label ${plan.images - plan.claimed} images without a human label.`
      + (plan.claimed ? ` ${plan.claimed} more ${plan.claimed === 1 ? 'is' : 'are'} claimed by an annotator now: skipped, and labeled by a later run.` : '')
      + ' Human labels are never replaced.'),
    h('label', {}, 'Confidence threshold ', threshold, h('span', { class: 'muted' }, ' pixels less sure than this stay unlabeled (0 labels every pixel); the project\'s default is filled in')),
    h('div', { class: 'row' }, start, ' ', cancel),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = Number(threshold.value);
    if (!(value >= 0 && value <= 1)) {
      threshold.setCustomValidity('a number from 0 to 1');
      threshold.reportValidity();
      return;
    }
    start.disabled = true;
    try {
      const job = await api(`/projects/${projectId}/pseudo-labels`, { json: { model_version_id: plan.model_version_id, threshold: value }, what: 'starting pseudo-labels' });
      dialog.close();
      onStarted(job);
    } catch (error) {
      reportError(error);
    } finally {
      start.disabled = false;
    }
  });
  threshold.addEventListener('input', () => threshold.setCustomValidity(''));
  dialog.replaceChildren(form);
  dialog.showModal();
}
