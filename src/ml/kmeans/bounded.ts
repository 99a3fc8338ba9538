import { DOUBLE_SLACK, exactDistances, squaredDistance, stepOperands } from './distance.js';
import { assignAll } from './threads.js';
import type { BoundsParams, KMeansResult, RunSetup, StepOutput } from './types.js';
import { INCREMENTAL_SHARE, moveRow, relocateEmptyClusters, updateCenters, yieldToEventLoop } from './update.js';

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
 * Bounded iterations from given centres. Each point keeps an upper bound on
 * the distance to its centre and, with Hamerly's method, one lower bound on
 * the distance to the second-nearest, lowered by the largest move of any
 * other centre; with Elkan's, a lower bound per centre, lowered by that
 * centre's own move (kept lazily: stored plus the centre's total move when
 * stored, minus its total move now). Only the points the bounds cannot
 * settle are scored against every centre. Each shard keeps and checks the
 * bounds of its own rows, so threads share that work too. The labels, centre
 * updates, stopping and progress calls are those of {@link lloyd}; while many
 * labels change an iteration scores every point as Lloyd's does.
 * @param perCentre - Elkan's bounds rather than Hamerly's.
 */
export async function bounded(setup: RunSetup, initial: Float32Array, run: number, perCentre: boolean): Promise<KMeansResult> {
  const { shards, points, norms, n, d, k, maxIter, tolerance, options } = setup;
  let centers: Float32Array = Float32Array.from(initial);
  const labels = new Int32Array(n);
  const previous = new Int32Array(n).fill(-1);
  const scores = new Float32Array(n);
  const squared = new Float64Array(n);
  let normSum = 0;
  for (let i = 0; i < n; i++) normSum += norms[i] as number;
  // A float32 score |c|^2 - 2 x.c over d terms is off by at most about d ulps of |x|^2 + |c|^2; a few more cover the bias and norms.
  const errorScale = (d + 8) * 2 ** -23;
  let sums: Float64Array = new Float64Array(k * d);
  let counts: Int32Array = new Int32Array(k);
  // What the shards' bounds have not seen yet: the last centre moves, and relocated points.
  let moves: Float64Array | null = null;
  let relocated: number[] = [];
  let changed = n;
  let strict = false;
  let iterations = 0;
  let scoredRows = 0;
  for (let iteration = 1; iteration <= maxIter; iteration++) {
    options.signal?.throwIfAborted();
    const operands = stepOperands(centers, k, d);
    let centerMax = 0;
    for (let j = 0; j < k; j++) centerMax = Math.max(centerMax, operands.centerNorms[j] as number);
    // The same rule as Lloyd's for re-summing, so that the sums, and hence the centres, are the same as Lloyd's.
    const full = iteration === 1 || changed * INCREMENTAL_SHARE > n;
    const common = { perCentre, centers, errorScale, centerMax, moves };
    previous.set(labels);
    changed = 0;
    if (full) {
      const bounds: BoundsParams = { ...common, mode: 'reset', half: new Float64Array(0), moves: null, relabel: null };
      ({ sums, counts } = await assignAll(shards, operands, k, d, labels, scores, true, bounds));
      scoredRows += n;
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
        scoredRows += out.scoredRows;
        for (let r = 0, i = shard.lo; r < out.labels.length; r++, i++) {
          const from = labels[i] as number;
          const to = out.labels[r] as number;
          if (from === to) continue;
          changed++;
          labels[i] = to;
          moveRow(points, d, i, from, to, sums, counts);
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
        dot += c * (sums[q] as number);
        square += c * c;
      }
      inertia += (counts[j] as number) * square - 2 * dot;
    }
    inertia = Math.max(0, inertia);
    if (counts.includes(0)) {
      // Which point an empty cluster takes depends on every point's score, as in Lloyd's iteration.
      if (!full) {
        await assignAll(shards, operands, k, d, new Int32Array(n), scores, false);
        scoredRows += n;
      }
      for (let i = 0; i < n; i++) squared[i] = Math.max(0, (norms[i] as number) + (scores[i] as number));
      relocated = relocateEmptyClusters(points, d, k, labels, squared, sums, counts);
    }
    const { next, shift } = updateCenters(centers, sums, counts, k, d);
    moves = centreMoves(centers, next, k, d);
    centers = next;
    iterations = iteration;
    options.onIteration?.(iteration, inertia, run);
    if (changed === 0) {
      strict = true;
      break;
    }
    if (shift <= tolerance) break;
    await yieldToEventLoop();
  }
  // Unless the labels stopped changing, they belong to the centres before the last update.
  if (!strict) {
    await assignAll(shards, stepOperands(centers, k, d), k, d, labels, scores, false);
    scoredRows += n;
  }
  const { distances, inertia } = exactDistances(points, n, d, centers, labels);
  return { centers, assignment: labels, distances, inertia, iterations, scoredRows };
}

