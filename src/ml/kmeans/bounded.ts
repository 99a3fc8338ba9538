import { DOUBLE_SLACK, squaredDistance } from './distance.js';
import type { AssignmentStep } from './iterate.js';
import { assignAll } from './threads.js';
import type { BoundsParams, RunSetup, StepOutput } from './types.js';
import { moveRow } from './update.js';

/** Half the distance from each centre to its nearest other centre (Infinity when k is 1), shrunk by the slack. */
export function halfGaps(centers: Float32Array, k: number, d: number): Float64Array {
  const half = new Float64Array(k).fill(Infinity);
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      const s = squaredDistance(centers, centers, d, a, b);
      const h = 0.5 * Math.sqrt(s) * (1 - DOUBLE_SLACK);
      if (h < (half[a] as number)) half[a] = h;
      if (h < (half[b] as number)) half[b] = h;
    }
  }
  return half;
}

/** How far each centre moved, grown by the slack. */
export function centreMoves(before: Float32Array, after: Float32Array, k: number, d: number): Float64Array {
  const moves = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    const s = squaredDistance(after, before, d, j, j);
    moves[j] = Math.sqrt(s) * (1 + DOUBLE_SLACK);
  }
  return moves;
}

/**
 * The bounded assignment step. Each point keeps an upper bound on the
 * distance to its centre and, with Hamerly's method, one lower bound on the
 * distance to the second-nearest, lowered by the largest move of any other
 * centre; with Elkan's, a lower bound per centre, lowered by that centre's own
 * move (kept lazily: stored plus the centre's total move when stored, minus
 * its total move now). Only the points the bounds cannot settle are scored
 * against every centre. Each shard keeps and checks the bounds of its own
 * rows, so threads share that work too. While many labels change (`full`),
 * an iteration scores every point as Lloyd's does and resets the bounds.
 * @param perCentre - Elkan's bounds rather than Hamerly's.
 */
export function boundedStep(setup: RunSetup, perCentre: boolean): AssignmentStep {
  const { shards, points, norms, n, d, k } = setup;
  const previous = new Int32Array(n);
  const scores = new Float32Array(n);
  const squared = new Float64Array(n);
  let normSum = 0;
  for (let i = 0; i < n; i++) normSum += norms[i] as number;
  // A float32 score |c|^2 - 2 x.c over d terms is off by at most about d ulps of |x|^2 + |c|^2; a few more cover the bias and norms.
  const errorScale = (d + 8) * 2 ** -23;
  // What the shards' bounds have not seen yet: the last centre moves, and relocated points.
  let moves: Float64Array | null = null;
  let relocated: readonly number[] = [];
  return {
    async assign(state, operands, full) {
      const { labels, centers } = state;
      let centerMax = 0;
      for (let j = 0; j < k; j++) centerMax = Math.max(centerMax, operands.centerNorms[j] as number);
      const common = { perCentre, centers, errorScale, centerMax, moves };
      let changed = 0;
      let scored = 0;
      if (full) {
        previous.set(labels);
        const bounds: BoundsParams = { ...common, mode: 'reset', half: new Float64Array(0), moves: null, relabel: null };
        ({ sums: state.sums, counts: state.counts } = await assignAll(shards, operands, k, d, labels, scores, true, bounds));
        scored = n;
        for (let i = 0; i < n; i++) if (labels[i] !== previous[i]) changed++;
      } else {
        const half = halfGaps(centers, k, d);
        const outputs = await Promise.all(
          shards.map((shard) => {
            const mine = relocated.filter((i) => i >= shard.lo && i < shard.hi).flatMap((i) => [i - shard.lo, labels[i] as number]);
            const bounds: BoundsParams = { ...common, mode: 'check', half, relabel: mine.length === 0 ? null : Int32Array.from(mine) };
            return shard.step({ ...operands, k, withSums: false, withSecond: false, withAll: false, rows: null, bounds });
          }),
        );
        shards.forEach((shard, q) => {
          const out = outputs[q] as StepOutput;
          scored += out.scoredRows;
          for (let r = 0, i = shard.lo; r < out.labels.length; r++, i++) {
            const from = labels[i] as number;
            const to = out.labels[r] as number;
            if (from === to) continue;
            changed++;
            labels[i] = to;
            moveRow(points, d, i, from, to, state.sums, state.counts);
          }
        });
      }
      relocated = [];
      // The inertia against this iteration's centres, from the cluster sums: sum |x|^2 - 2 c.S + m |c|^2.
      let inertia = normSum;
      for (let j = 0; j < k; j++) {
        let dot = 0;
        let square = 0;
        for (let f = 0, q = j * d; f < d; f++, q++) {
          const c = centers[q] as number;
          dot += c * (state.sums[q] as number);
          square += c * c;
        }
        inertia += (state.counts[j] as number) * square - 2 * dot;
      }
      return { changed, scored, inertia: Math.max(0, inertia) };
    },
    async squared(operands, full) {
      // A checking iteration scored only some points: score them all once more.
      let scored = 0;
      if (!full) {
        await assignAll(shards, operands, k, d, new Int32Array(n), scores, false);
        scored = n;
      }
      for (let i = 0; i < n; i++) squared[i] = Math.max(0, (norms[i] as number) + (scores[i] as number));
      return { squared, scored };
    },
    moved(before, after, moved) {
      moves = centreMoves(before, after, k, d);
      relocated = moved;
    },
  };
}
