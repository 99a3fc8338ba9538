import { exactDistances, stepOperands } from './distance.js';
import { assignAll } from './threads.js';
import type { KMeansResult, RunSetup } from './types.js';
import { INCREMENTAL_SHARE, moveRow, relocateEmptyClusters, updateCenters, yieldToEventLoop } from './update.js';

/** Lloyd iterations from given centres, stopping like scikit-learn's. */
export async function lloyd(setup: RunSetup, initial: Float32Array, run: number): Promise<KMeansResult> {
  const { shards, points, norms, n, d, k, maxIter, tolerance, options } = setup;
  let centers: Float32Array = Float32Array.from(initial);
  const labels = new Int32Array(n);
  const previous = new Int32Array(n).fill(-1);
  const scores = new Float32Array(n);
  const squared = new Float64Array(n);
  // The cluster sums and sizes of `previous`, kept across iterations.
  let sums: Float64Array = new Float64Array(k * d);
  let counts: Int32Array = new Int32Array(k);
  let changed = n;
  let strict = false;
  let iterations = 0;
  for (let iteration = 1; iteration <= maxIter; iteration++) {
    options.signal?.throwIfAborted();
    // Once few labels change, moving those points between sums is far cheaper than summing every point again.
    const resum = iteration === 1 || changed * INCREMENTAL_SHARE > n;
    const step = await assignAll(shards, stepOperands(centers, k, d), k, d, labels, scores, resum);
    changed = 0;
    for (let i = 0; i < n; i++) {
      const from = previous[i] as number;
      const to = labels[i] as number;
      if (from === to) continue;
      changed++;
      if (!resum) moveRow(points, d, i, from, to, sums, counts);
    }
    if (resum) ({ sums, counts } = step);
    let inertia = 0;
    for (let i = 0; i < n; i++) {
      // |x|^2 + |c|^2 - 2 x.c can come out slightly negative in float32.
      const s = Math.max(0, (norms[i] as number) + (scores[i] as number));
      squared[i] = s;
      inertia += s;
    }
    relocateEmptyClusters(points, d, k, labels, squared, sums, counts);
    const { next, shift } = updateCenters(centers, sums, counts, k, d);
    centers = next;
    iterations = iteration;
    options.onIteration?.(iteration, inertia, run);
    if (changed === 0) {
      strict = true;
      break;
    }
    if (shift <= tolerance) break;
    previous.set(labels);
    await yieldToEventLoop();
  }
  // Unless the labels stopped changing, they belong to the centres before the last update.
  if (!strict) await assignAll(shards, stepOperands(centers, k, d), k, d, labels, scores, false);
  const { distances, inertia } = exactDistances(points, n, d, centers, labels);
  return { centers, assignment: labels, distances, inertia, iterations, scoredRows: n * (iterations + (strict ? 0 : 1)) };
}

