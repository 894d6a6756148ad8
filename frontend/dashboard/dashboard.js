// The lead's dashboard: import (upload with a progress bar, or a server folder as a job), start a round, follow
// jobs live by server-sent events with cancel, the label-efficiency curve and the effort per image beside it
// (effort.js), the ranked queue, model versions, exports. Clients (read-only) see the results without the controls.

import { API_BASE, ApiError, api, blobUrl, describeFailure, followJob, getToken, isTerminal } from '../api.js';
import { can, formatDate, h, inProject, projectIdFromUrl, renderHeader, reportError, requireUser, say } from '../ui.js';
import { renderCurve, renderIouTable } from './curve.js';
import { renderEffort } from './effort.js';
import { openPseudoLabelDialog } from './pseudo-label-dialog.js';
import { renderTeamPanels } from './team.js';

const $ = (id) => document.getElementById(id);
const state = {
  user: null, projectId: null, project: null, followed: new Map(), thumbnails: [], roundOfJob: new Map(), poolCounts: null,
};
window.dashboard = state;

// ---------------------------------------------------------------- jobs

const JOB_TITLES = { round: 'Round', first_set: 'First set', pseudo_label: 'Pseudo-labels', import: 'Import', export: 'Export', sam_embed: 'SAM embedding' };

/** What a job is called everywhere on the page: a round job by its round ("Round 2 · job #6"). */
function jobTitle(job) {
  const round = state.roundOfJob.get(job.id);
  if (job.kind === 'round' && round !== undefined) return `Round ${round} · job #${job.id}`;
  if (job.kind === 'first_set' && round !== undefined) return `First set (round ${round}) · job #${job.id}`;
  return `${JOB_TITLES[job.kind] || job.kind} · job #${job.id}`;
}

/** What an ended job did, where its result says more than "done". */
function jobOutcome(job) {
  const result = job.result || {};
  if (job.kind !== 'pseudo_label' || result.stored == null) return '';
  const claimed = result.skipped_claimed ? `, ${result.skipped_claimed} claimed by annotators skipped (a later run labels them)` : '';
  const human = result.skipped_human ? `, ${result.skipped_human} labeled by people meanwhile` : '';
  return ` · ${result.stored} of ${result.total} images labeled${claimed}${human}`;
}

function jobLine(job) {
  const percent = Math.round(job.progress * 100);
  const when = isTerminal(job) && job.finished_at ? ` · ${formatDate(job.finished_at)}` : '';
  const message = job.message && !(isTerminal(job) && job.message === job.status) ? ` · ${job.message}` : '';
  return `${jobTitle(job)} · ${job.status} · ${percent}%${message}${jobOutcome(job)}${when}`;
}

/** Show a job's row and follow it by SSE until it ends; resolves with the final job. A job of the history
 * (`history`: ended before the page opened) gets its row only, without a message. */
function trackJob(job, { onDone, history = false } = {}) {
  if (state.followed.has(job.id)) return state.followed.get(job.id).done;
  $('no-jobs').hidden = true;
  const bar = h('progress', { max: 1, value: job.progress, 'aria-label': `progress of ${job.kind} job ${job.id}` });
  const text = h('span', { class: 'job-text' }, jobLine(job));
  const cancel = h('button', { class: 'job-cancel', title: `cancel ${job.kind} job ${job.id}` }, 'Cancel');
  cancel.hidden = !can(state.user, 'lead');
  const row = h('div', { class: 'job', id: `job-${job.id}`, dataset: { status: job.status } }, h('div', { class: 'line' }, bar, cancel), text);
  $('jobs').prepend(row);
  const controller = new AbortController();
  const update = (current) => {
    bar.value = current.progress;
    text.textContent = jobLine(current);
    row.dataset.status = current.status;
    if (current.error) text.textContent += ` · ${current.error}`;
    cancel.disabled = isTerminal(current) || current.cancel_requested;
    cancel.hidden = !can(state.user, 'lead') || isTerminal(current); // an ended job has nothing to cancel
  };
  cancel.addEventListener('click', async () => {
    try {
      update(await api(`/jobs/${job.id}/cancel`, { method: 'POST', what: `cancelling job ${job.id}` }));
      say(`Cancel requested for ${jobTitle(job)}.`);
    } catch (error) {
      reportError(error);
    }
  });
  update(job);
  if (history && isTerminal(job)) {
    const done = Promise.resolve(job);
    state.followed.set(job.id, { done, controller });
    return done;
  }
  const done = (isTerminal(job) ? Promise.resolve(job) : followJob(job.id, update, { signal: controller.signal }))
    .then((final) => {
      update(final);
      const kind = final.status === 'done' ? 'info' : final.status === 'cancelled' ? 'warning' : 'error';
      say(`${jobTitle(final)} ${final.status}${final.error ? `: ${final.error}` : ''}.`, { kind });
      if (onDone) onDone(final);
      refreshResults();
      return final;
    })
    .catch((error) => {
      reportError(error, `following job ${job.id}`);
      throw error;
    });
  state.followed.set(job.id, { done, controller });
  return done;
}

const JOB_HISTORY = 20; // the newest jobs shown after a reload, ended ones included (cancelled rounds too)

/** The jobs panel after a (re)load: the newest jobs, oldest first so the newest ends on top; live ones followed. */
async function resumeJobs() {
  const jobs = await api(`/projects/${state.projectId}/jobs`, { query: { limit: 100 }, what: 'loading the jobs' });
  const shown = jobs.filter((j) => j.kind !== 'sam_embed').slice(0, JOB_HISTORY).reverse();
  for (const job of shown) trackJob(job, { history: true }).catch(() => {});
}

// ---------------------------------------------------------------- rounds

/** The budget field's text as the API takes it: a count (21) or a percentage ('1%'). */
function budgetOf(text) {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/** POST a query round or a first set, say what started and follow its job; while another round runs (409),
 * follow that one instead. */
async function startRound(path, body, what, button, started) {
  button.disabled = true;
  try {
    const round = await api(`/projects/${state.projectId}/${path}`, { json: body, what });
    state.roundOfJob.set(round.job_id, round.index);
    say(started(round));
    trackJob(round.job || (await api(`/jobs/${round.job_id}`))).catch(() => {});
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.body && error.body.job_id) {
      say('A round is already running; its progress is shown under Jobs.', { kind: 'warning' });
      trackJob(await api(`/jobs/${error.body.job_id}`)).catch(() => {});
    } else {
      reportError(error);
    }
  } finally {
    button.disabled = false;
  }
}

$('round-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    method: form.method.value,
    strategy: form.strategy.value,
    budget: budgetOf(form.budget.value),
    profile: form.profile.value,
    seed: Number(form.seed.value || 0),
  };
  if (form.steps.value) body.steps = Number(form.steps.value);
  if (form.crop_size.value) body.crop_size = Number(form.crop_size.value);
  if (form.self_training.checked) {
    body.self_training = { threshold: Number(form.st_threshold.value || 0.9) };
    if (form.st_teacher.value) body.self_training.teacher = form.st_teacher.value;
    if (form.steps.value) body.self_training.steps = Number(form.steps.value);
  }
  const selfTrained = body.self_training ? ', self-trained model' : '';
  await startRound('rounds', body, 'starting the round', $('start-round'),
    (round) => `Round ${round.index} started (${round.method} / ${round.strategy}, budget ${round.budget} images${selfTrained}).`);
});

$('first-set-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { method: form.method.value, budget: budgetOf(form.budget.value) };
  await startRound('first-set', body, 'choosing the first images', $('start-first-set'),
    (round) => `Choosing the first ${round.budget} images (${round.strategy}); the queue serves them once the job is done.`);
});

// ---------------------------------------------------------------- imports

function uploadWithProgress(form) {
  // fetch() reports no upload progress; XMLHttpRequest does.
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', `${API_BASE}/projects/${state.projectId}/images`);
    request.setRequestHeader('Authorization', `Bearer ${getToken()}`);
    const bar = $('upload-progress');
    bar.hidden = false;
    bar.value = 0;
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) bar.value = event.loaded / event.total;
    });
    request.addEventListener('load', () => {
      bar.value = 1;
      let body = request.responseText;
      try {
        body = JSON.parse(body);
      } catch {
        // keep the text
      }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else {
        const detail = typeof body === 'object' && body && body.detail ? body.detail : String(body || request.statusText);
        reject(new ApiError(describeFailure(request.status, detail, 'uploading'), { status: request.status, detail, body }));
      }
    });
    request.addEventListener('error', () => reject(new ApiError('uploading: cannot reach the server. Check your connection and try again.')));
    request.send(form);
  });
}

$('upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  if (!form.files.files.length) {
    say('Choose one or more image files first.', { kind: 'warning' });
    return;
  }
  const data = new FormData();
  for (const file of form.files.files) data.append('files', file);
  for (const file of form.labels.files) data.append('labels', file);
  data.append('split', form.split.value);
  $('upload-button').disabled = true;
  try {
    const result = await uploadWithProgress(data);
    const rejected = result.items.filter((item) => item.status === 'rejected');
    $('upload-result').textContent = `${result.stored} stored, ${result.duplicate} duplicate, ${result.rejected} rejected.`;
    if (rejected.length) say(`Rejected: ${rejected.map((item) => `${item.file_name} (${item.reason})`).join('; ')}`, { kind: 'error' });
    form.reset();
    refreshResults();
  } catch (error) {
    reportError(error);
  } finally {
    $('upload-button').disabled = false;
  }
});

$('folder-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const job = await api(`/projects/${state.projectId}/imports`, { json: { path: form.path.value.trim(), layout: form.layout.value }, what: 'starting the import' });
    trackJob(job).catch(() => {});
  } catch (error) {
    reportError(error);
  }
});

// ---------------------------------------------------------------- results: curve, queue, models

async function refreshCurve() {
  const metrics = await api(`/projects/${state.projectId}/metrics`, { what: 'loading the metrics' });
  for (const round of metrics.rounds) if (round.job_id != null) state.roundOfJob.set(round.job_id, round.index);
  renderCurve($('curve'), metrics.curve);
  renderIouTable($('iou-table'), metrics.curve);
  $('curve').dataset.points = String(metrics.curve.filter((p) => p.miou != null).length);
  return metrics;
}

async function refreshQueue(metrics) {
  for (const url of state.thumbnails) URL.revokeObjectURL(url);
  state.thumbnails = [];
  const done = metrics.rounds.filter((r) => r.status === 'done').sort((a, b) => b.index - a.index)[0];
  if (!done) {
    const page = await api(`/projects/${state.projectId}/images`, { query: { split: 'pool', status: 'unlabeled', limit: 24 } });
    $('queue-caption').textContent = `No round yet: the queue serves import order (${page.total} unlabeled pool images).`;
    renderQueue(page.items.map((image, i) => ({ image_id: image.id, file_name: image.file_name, rank: i + 1, score: null, status: image.status, model_confidence: image.model_confidence })));
    return;
  }
  const scores = await api(`/projects/${state.projectId}/rounds/${done.id}/scores`, { query: { limit: 24 }, what: 'loading the ranked queue' });
  const source = done.method === 'first-set' ? `First set, round ${done.index} (${done.strategy})` : `Round ${done.index} (${done.strategy})`;
  $('queue-caption').textContent = `${source}: the first ${scores.items.length} of ${scores.total} ranked images.`;
  renderQueue(scores.items);
}

function renderQueue(items) {
  const annotate = can(state.user, 'annotate');
  $('queue').replaceChildren(
    ...items.map((item) => {
      const img = h('img', { alt: item.file_name, loading: 'lazy' });
      blobUrl(`/projects/${state.projectId}/images/${item.image_id}/thumbnail`, { query: { max_side: 160 } })
        .then((url) => {
          state.thumbnails.push(url);
          img.src = url;
        })
        .catch((error) => reportError(error, `thumbnail of ${item.file_name}`));
      const caption = h(
        'div',
        {},
        h('strong', {}, `#${item.rank}`),
        item.score == null ? '' : ` · ${item.score.toFixed(4)}`,
        item.status === 'labeled' ? ' · labeled' : '',
        item.model_confidence == null ? '' : h('span', { class: 'confidence', title: "the model's mean confidence in its prediction of this image" }, ` · conf ${item.model_confidence.toFixed(2)}`),
      );
      const name = h('div', { class: 'muted', title: item.file_name }, item.file_name.length > 18 ? `${item.file_name.slice(0, 17)}…` : item.file_name);
      const body = annotate ? h('a', { href: `/app/annotate/?project=${state.projectId}&image=${item.image_id}` }, img) : img;
      return h('div', { class: 'queue-item', dataset: { imageId: item.image_id } }, body, caption, name);
    }),
  );
}

async function refreshModels() {
  const models = await api(`/projects/${state.projectId}/models`, { what: 'loading the model versions' });
  const lead = can(state.user, 'lead');
  const head = h('thead', {}, h('tr', {}, ['Model', 'Round', 'Method', 'Labeled', 'mIoU', 'Created', ''].map((t) => h('th', {}, t))));
  const rows = models.map((model) =>
    h(
      'tr',
      {},
      h('td', {}, `#${model.id}`),
      h('td', {}, model.round_id ?? '–'),
      h('td', {}, model.method),
      h('td', { class: 'num' }, model.labeled_count),
      h('td', { class: 'num' }, model.metrics && model.metrics.miou != null ? `${(model.metrics.miou * 100).toFixed(1)}%` : '–'),
      h('td', {}, formatDate(model.created_at)),
      h(
        'td',
        {},
        lead
          ? h('button', {
            class: 'pseudo-label',
            title: 'label every image without a human label with this model (asks first)',
            onclick: () => openPseudoLabelDialog(state.projectId, model, (job) => trackJob(job).catch(() => {})),
          }, 'Pseudo-label…')
          : '',
      ),
    ),
  );
  $('models').replaceChildren(head, h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No model yet.'))));
}

// The product's aim: about 3% of the pool labelled by hand, then the model labels the rest. From there on a
// round's model may be the one that does, and the benchmark's pipeline self-trains that model (its student beat
// its teacher in almost every dev run), so the form pre-selects it until the lead decides otherwise.
const TARGET_SHARE = 0.03;

function suggestSelfTraining(pool, labeled) {
  state.poolCounts = { pool, labeled };
  const box = $('round-self-training');
  const hint = $('round-hint');
  const reached = pool > 0 && labeled / pool >= TARGET_SHARE;
  hint.hidden = !reached;
  if (!reached) return;
  if (box.dataset.touched !== 'true') box.checked = true;
  hint.textContent = `${labeled} of ${pool} pool images are labeled (${((labeled / pool) * 100).toFixed(1)}%, the 3% aim reached): `
    + 'this round\'s model may be the one that labels the rest, so self-training it is recommended'
    + (box.checked ? ' and selected.' : '.');
}
$('round-self-training').addEventListener('change', (event) => {
  event.target.dataset.touched = 'true'; // the lead decided: refreshes no longer pre-select
  if (state.poolCounts) suggestSelfTraining(state.poolCounts.pool, state.poolCounts.labeled);
});

async function refreshSummary() {
  const count = (query) => api(`/projects/${state.projectId}/images`, { query: { ...query, limit: 1 } }).then((page) => page.total);
  const [pool, labeled, val, test] = await Promise.all([
    count({ split: 'pool' }), count({ split: 'pool', status: 'labeled' }), count({ split: 'val' }), count({ split: 'test' }),
  ]);
  suggestSelfTraining(pool, labeled);
  $('first-set-hint').hidden = !(pool > 0 && labeled === 0);
  $('project-summary').textContent = `${pool} pool images (${labeled} labeled) · ${val} val · ${test} test images · classes: ${state.project.classes.map((c) => c.name).join(', ')}`;
}

let refreshing = null;
function refreshResults() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const metrics = await refreshCurve();
      await Promise.all([refreshQueue(metrics), refreshModels(), refreshSummary(), renderEffort($('effort-panel'), state.projectId)]);
    } catch (error) {
      reportError(error);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// ---------------------------------------------------------------- export

for (const button of document.querySelectorAll('#export [data-format]')) {
  button.addEventListener('click', async () => {
    const format = button.dataset.format;
    const bar = $('export-progress');
    bar.hidden = false;
    button.disabled = true;
    try {
      const response = await api(`/projects/${state.projectId}/export`, { raw: true, query: { format, images: $('export-images').checked }, what: `exporting ${format}` });
      const disposition = response.headers.get('content-disposition') || '';
      const match = disposition.match(/filename="([^"]+)"/);
      const name = match ? match[1] : `${state.project.name}-${format}.zip`;
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      say(`Export ${name} downloaded.`);
    } catch (error) {
      reportError(error);
    } finally {
      bar.hidden = true;
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- start

async function main() {
  state.projectId = projectIdFromUrl();
  state.user = await requireUser();
  state.project = await api(`/projects/${state.projectId}`, { what: 'loading the project' });
  state.user = inProject(state.user, state.project); // menus and controls follow the project role here
  renderHeader(state.user, { projectId: state.projectId, current: 'dashboard' });
  $('project-title').textContent = `${state.project.name} · dashboard`;
  document.title = `${state.project.name} · marslabel`;
  for (const section of document.querySelectorAll('.lead-only')) section.hidden = !can(state.user, 'lead');
  await refreshResults();
  await renderTeamPanels(state.projectId);
  await resumeJobs();
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  document.body.dataset.ready = 'error';
  reportError(error);
});
