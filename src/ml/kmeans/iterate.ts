import { exactDistances, stepOperands } from './distance.js';
import { assignAll } from './threads.js';
import type { KMeansResult, RunSetup } from './types.js';
import { INCREMENTAL_SHARE, relocateEmptyClusters, updateCenters, yieldToEventLoop } from './update.js';

/** What the driver and an assignment step share during one run. */
export interface IterationState {
  /** This iteration's centres, k*d row-major (the driver replaces them after each update). */
  centers: Float32Array;
  /** In: the previous iteration's labels (-1 before the first). Out: each point's nearest centre. */
  readonly labels: Int32Array;
  /** The cluster sums (k*d) and sizes of `labels`, kept in step with them by the assignment step. */
  sums: Float64Array;
  counts: Int32Array;
}

/** The products' operands for one set of centres (see `stepOperands`). */
export type Operands = ReturnType<typeof stepOperands>;

/**
 * How an iteration finds each point's nearest centre: Lloyd's scores every
 * point, the bounded steps (Elkan's, Hamerly's) only the points whose bounds
 * cannot settle. Every step must give the labels Lloyd's would, and keep the
 * sums as Lloyd's does (re-summed when `full`, else moved row by row), so
 * that the centres, and the result, do not depend on the step.
 */
export interface AssignmentStep {
  /**
   * Labels every point for `state.centers` and brings the sums and sizes up
   * to date. Returns how many labels changed, how many rows were scored, and
   * the inertia against these centres (for progress only).
   */
  assign(state: IterationState, operands: Operands, full: boolean): Promise<{ readonly changed: number; readonly scored: number; readonly inertia: number }>;
  /**
   * Each point's squared distance to its centre, asked only when a cluster
   * came out empty (which point it takes depends on every point's score).
   */
  squared(operands: Operands, full: boolean): Promise<{ readonly squared: Float64Array; readonly scored: number }>;
  /** Hears that the centres moved from `before` to `after` and which points were moved into empty clusters. */
  moved(before: Float32Array, after: Float32Array, relocated: readonly number[]): void;
}

/**
 * The one k-means iteration driver: assign with the given step, move points
 * into empty clusters, update the centres, and stop like scikit-learn (labels
 * unchanged, or the centres' squared shift within the tolerance).
 */
export async function iterate(setup: RunSetup, initial: Float32Array, run: number, step: AssignmentStep): Promise<KMeansResult> {
  const { shards, points, n, d, k, maxIter, tolerance, options } = setup;
  const state: IterationState = { centers: Float32Array.from(initial), labels: new Int32Array(n).fill(-1), sums: new Float64Array(k * d), counts: new Int32Array(k) };
  let changed = n;
  let strict = false;
  let iterations = 0;
  let scoredRows = 0;
  for (let iteration = 1; iteration <= maxIter; iteration++) {
    options.signal?.throwIfAborted();
    const operands = stepOperands(state.centers, k, d);
    // Once few labels change, moving those points between sums is far cheaper than summing every point again.
    const full = iteration === 1 || changed * INCREMENTAL_SHARE > n;
    const assigned = await step.assign(state, operands, full);
    changed = assigned.changed;
    scoredRows += assigned.scored;
    let relocated: number[] = [];
    if (state.counts.includes(0)) {
      const { squared, scored } = await step.squared(operands, full);
      scoredRows += scored;
      relocated = relocateEmptyClusters(points, d, k, state.labels, squared, state.sums, state.counts);
    }
    const { next, shift } = updateCenters(state.centers, state.sums, state.counts, k, d);
    step.moved(state.centers, next, relocated);
    state.centers = next;
    iterations = iteration;
    options.onIteration?.(iteration, assigned.inertia, run);
    if (changed === 0) {
      strict = true;
      break;
    }
    if (shift <= tolerance) break;
    await yieldToEventLoop();
  }
  // Unless the labels stopped changing, they belong to the centres before the last update.
  if (!strict) {
    await assignAll(shards, stepOperands(state.centers, k, d), k, d, state.labels, new Float32Array(n), false);
    scoredRows += n;
  }
  const { distances, inertia } = exactDistances(points, n, d, state.centers, state.labels);
  return { centers: state.centers, assignment: state.labels, distances, inertia, iterations, scoredRows };
}
