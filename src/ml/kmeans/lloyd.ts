import type { AssignmentStep } from './iterate.js';
import { assignAll } from './threads.js';
import type { RunSetup } from './types.js';
import { moveRow } from './update.js';

/** Lloyd's assignment step: every point scored against every centre, each iteration. */
export function lloydStep(setup: RunSetup): AssignmentStep {
  const { shards, points, norms, n, d, k } = setup;
  const previous = new Int32Array(n);
  const scores = new Float32Array(n);
  const squared = new Float64Array(n);
  return {
    async assign(state, operands, full) {
      previous.set(state.labels);
      const step = await assignAll(shards, operands, k, d, state.labels, scores, full);
      let changed = 0;
      for (let i = 0; i < n; i++) {
        const from = previous[i] as number;
        const to = state.labels[i] as number;
        if (from === to) continue;
        changed++;
        if (!full) moveRow(points, d, i, from, to, state.sums, state.counts);
      }
      if (full) {
        state.sums = step.sums;
        state.counts = step.counts;
      }
      let inertia = 0;
      for (let i = 0; i < n; i++) {
        // |x|^2 + |c|^2 - 2 x.c can come out slightly negative in float32.
        const s = Math.max(0, (norms[i] as number) + (scores[i] as number));
        squared[i] = s;
        inertia += s;
      }
      return { changed, scored: n, inertia };
    },
    // Every score of this iteration is already at hand.
    squared: async () => ({ squared, scored: 0 }),
    moved: () => undefined,
  };
}
