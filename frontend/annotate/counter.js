// The progress line of the side panel: pool images labelled, and against the budget of the last finished round.

import { api } from '../api.js';
import { reportError } from '../ui.js';
import { session } from './session.js';

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
