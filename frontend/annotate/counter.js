// The progress line of the side panel: pool images labeled, and against the budget of the last finished round.
// Kept current while the page stays open: after each save and image, when the page comes back into view, and
// every REFRESH_MS, so that a round that ends meanwhile shows up.

import { api } from '../api.js';
import { reportError } from '../ui.js';
import { session } from './session.js';

const REFRESH_MS = 30_000;

export async function updateCounter() {
  const { projectId } = session;
  try {
    const [rounds, labeled, pool] = await Promise.all([
      api(`/projects/${projectId}/rounds`, { what: 'loading the rounds' }),
      api(`/projects/${projectId}/images`, { query: { split: 'pool', status: 'labeled', limit: 1 } }),
      api(`/projects/${projectId}/images`, { query: { split: 'pool', limit: 1 } }),
    ]);
    const done = rounds.filter((r) => r.status === 'done').sort((a, b) => b.index - a.index);
    const round = done[0] || null;
    const counter = document.getElementById('counter');
    if (round) {
      const since = Math.max(0, labeled.total - round.labeled_count);
      counter.textContent = `Round ${round.index}: ${since} / ${round.budget} labeled (budget) · ${labeled.total} of ${pool.total} pool images labeled`;
    } else {
      counter.textContent = `${labeled.total} of ${pool.total} pool images labeled · no round yet`;
    }
  } catch (error) {
    reportError(error, 'counting the labeled images');
  }
}

export function keepCounterCurrent() {
  window.addEventListener('focus', () => updateCounter());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') updateCounter();
  });
  setInterval(() => {
    if (document.visibilityState === 'visible') updateCounter();
  }, REFRESH_MS);
}
