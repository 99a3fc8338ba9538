import type { Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { Random } from '../util/random.js';
import type { Tf } from './backend.js';

/** How the initial centres are chosen when they are not given explicitly. */
export const KMEANS_INITS = ['k-means++', 'random'] as const;
/** An initialisation method's name. */
export type KMeansInit = (typeof KMEANS_INITS)[number];

/** Options of {@link kmeans}. */
export interface KMeansOptions {
  /** Number of clusters, at least 1 and at most the number of points. */
  readonly k: number;
  /**
   * Explicit initial centres (k*d, row-major), or the method that picks them
   * (default `k-means++`). Explicit centres imply a single run.
   */
  readonly init?: Float32Array | KMeansInit;
  /** Independent runs from different initialisations; the lowest inertia wins. Default 1. */
  readonly nInit?: number;
  /** Maximum Lloyd iterations per run. Default 300. */
  readonly maxIter?: number;
  /**
   * Convergence tolerance, relative like scikit-learn's: a run stops when the
   * squared shifts of the centres, summed, are at most `tol` times the mean
   * per-feature variance of the data. Default 1e-4.
   */
  readonly tol?: number;
  /** Seed of every random choice. Default 0. */
  readonly seed?: number;
  /**
   * Threads sharing the distance and centre-sum work; each extra one is a
   * worker thread with its own TensorFlow.js backend. Default 1.
   */
  readonly threads?: number;
  /** Rows per tensor chunk: bounds the memory of the n x k distance products. Default 4096. */
  readonly chunkRows?: number;
  /** At most this many points (a seeded sample) are used by k-means++. Default 20000. */
  readonly initSampleSize?: number;
  /** Called after each Lloyd iteration with the inertia against the centres it started from. */
  readonly onIteration?: (iteration: number, inertia: number, run: number) => void;
  /** Stops the work between iterations, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The outcome of {@link kmeans}: the best run. */
export interface KMeansResult {
  /** Final centres, k*d row-major. */
  readonly centers: Float32Array;
  /** The centre each point belongs to (the nearest final centre). */
  readonly assignment: Int32Array;
  /** Euclidean distance of each point to its centre. */
  readonly distances: Float32Array;
  /** Sum of squared distances of the points to their centres. */
  readonly inertia: number;
  /** Lloyd iterations the best run took. */
  readonly iterations: number;
}

const DEFAULTS = { nInit: 1, maxIter: 300, tol: 1e-4, seed: 0, threads: 1, chunkRows: 4096, initSampleSize: 20000 } as const;

/** What one Lloyd step on a block of rows produces. */
export interface StepOutput {
  /** Nearest centre of each row. */
  readonly labels: Int32Array;
  /** min over centres of |c|^2 - 2 x.c: the squared distance without the |x|^2 term. */
  readonly scores: Float32Array;
  /** Per-cluster sums of the rows (k*d), when asked for. */
  readonly sums: Float64Array | null;
  /** Per-cluster row counts, when sums are asked for. */
  readonly counts: Int32Array | null;
}

/**
 * A block of rows held as TensorFlow.js tensors, and the work of a Lloyd step
 * on them: nearest centres by matrix products, then per-cluster sums. Used
 * in-process and inside worker threads.
 */
export class KMeansShard {
  private readonly chunks: { readonly rows: number; readonly x: Tensor2D }[] = [];

  /**
   * Copies the rows into tensors, `chunkRows` at a time.
   * @param points - `rows` x `d` values, row-major.
   */
  constructor(private readonly tf: Tf, points: Float32Array, readonly rows: number, readonly d: number, chunkRows: number) {
    for (let lo = 0; lo < rows; lo += chunkRows) {
      const hi = Math.min(rows, lo + chunkRows);
      this.chunks.push({ rows: hi - lo, x: tf.tensor2d(points.subarray(lo * d, hi * d), [hi - lo, d]) });
    }
  }

  /**
   * Assigns every row to its nearest centre.
   * @param centersT - The centres transposed, d x k, and multiplied by -2.
   * @param centerNorms - |c|^2 of each centre.
   * @param withSums - Also sum the rows of each cluster (the update step).
   */
  step(centersT: Float32Array, centerNorms: Float32Array, k: number, withSums: boolean): StepOutput {
    const { tf, d } = this;
    const labels = new Int32Array(this.rows);
    const scores = new Float32Array(this.rows);
    const sums = withSums ? new Float64Array(k * d) : null;
    const counts = withSums ? new Int32Array(k) : null;
    // The transposed form keeps the big product a plain matMul, several times faster on wasm than a transposed one.
    const ct = tf.tensor2d(centersT, [d, k]);
    const bias = tf.tensor1d(centerNorms);
    try {
      let offset = 0;
      for (const chunk of this.chunks) {
        const [argT, minT] = tf.tidy((): [Tensor1D, Tensor1D] => {
          const s = tf.fused.matMul({ a: chunk.x, b: ct, bias });
          return [tf.argMin(s, 1), tf.min(s, 1)];
        });
        const chunkLabels = argT.dataSync<'int32'>();
        scores.set(minT.dataSync<'float32'>(), offset);
        labels.set(chunkLabels, offset);
        argT.dispose();
        minT.dispose();
        if (sums !== null && counts !== null) this.addClusterSums(chunk.x, chunkLabels, k, sums, counts);
        offset += chunk.rows;
      }
    } finally {
      ct.dispose();
      bias.dispose();
    }
    return { labels, scores, sums, counts };
  }

  /** Sums the rows of each cluster with a segment sum, which needs the rows ordered by cluster. */
  private addClusterSums(x: Tensor2D, labels: Int32Array, k: number, sums: Float64Array, counts: Int32Array): void {
    const m = labels.length;
    const start = new Int32Array(k + 1);
    for (let i = 0; i < m; i++) {
      const at = (labels[i] as number) + 1;
      start[at] = (start[at] as number) + 1;
    }
    for (let j = 0; j < k; j++) start[j + 1] = (start[j + 1] as number) + (start[j] as number);
    for (let j = 0; j < k; j++) counts[j] = (counts[j] as number) + (start[j + 1] as number) - (start[j] as number);
    const order = new Int32Array(m);
    const segments = new Int32Array(m);
    const next = start.slice(0, k);
    for (let i = 0; i < m; i++) {
      const label = labels[i] as number;
      const at = next[label] as number;
      next[label] = at + 1;
      order[at] = i;
      segments[at] = label;
    }
    const summed = this.tf.tidy(() =>
      this.tf.sparse.sparseSegmentSum(x, this.tf.tensor1d(order, 'int32'), this.tf.tensor1d(segments, 'int32')),
    );
    // The result has rows up to the largest label present only.
    const values = summed.dataSync<'float32'>();
    summed.dispose();
    for (let q = 0; q < values.length; q++) sums[q] = (sums[q] as number) + (values[q] as number);
  }

  /** Frees the tensors. */
  dispose(): void {
    for (const chunk of this.chunks) chunk.x.dispose();
    this.chunks.length = 0;
  }
}

/** Messages between {@link kmeans} and its worker threads. */
export type ShardRequest =
  | { readonly type: 'step'; readonly centersT: Float32Array; readonly centerNorms: Float32Array; readonly k: number; readonly withSums: boolean };
/** A worker thread's answers. */
export type ShardReply =
  | { readonly type: 'ready' }
  | { readonly type: 'step'; readonly output: StepOutput }
  | { readonly type: 'error'; readonly message: string; readonly stack?: string };
/** What a worker thread receives at start. */
export interface ShardInit {
  readonly points: Float32Array;
  readonly rows: number;
  readonly d: number;
  readonly chunkRows: number;
}

/** A block of rows [lo, hi) served either in-process or by a worker thread. */
interface ShardHandle {
  readonly lo: number;
  readonly hi: number;
  step(centersT: Float32Array, centerNorms: Float32Array, k: number, withSums: boolean): Promise<StepOutput>;
  close(): Promise<void>;
}

function localShard(shard: KMeansShard, lo: number, hi: number): ShardHandle {
  return {
    lo,
    hi,
    step: async (centersT, centerNorms, k, withSums) => shard.step(centersT, centerNorms, k, withSums),
    close: async () => shard.dispose(),
  };
}

async function workerShard(points: Float32Array, lo: number, hi: number, d: number, chunkRows: number): Promise<ShardHandle> {
  const rows = points.slice(lo * d, hi * d);
  const init: ShardInit = { points: rows, rows: hi - lo, d, chunkRows };
  const worker = new Worker(new URL('./kmeans-worker.js', import.meta.url), { workerData: init, transferList: [rows.buffer] });
  let pending: { resolve: (reply: ShardReply) => void; reject: (error: Error) => void } | null = null;
  let failure: Error | null = null;
  const fail = (error: Error): void => {
    failure ??= error;
    pending?.reject(error);
    pending = null;
  };
  worker.on('message', (reply: ShardReply) => {
    const waiting = pending;
    pending = null;
    if (reply.type === 'error') {
      const error = new Error(`k-means worker: ${reply.message}`);
      if (reply.stack !== undefined) error.stack = reply.stack;
      failure ??= error;
      waiting?.reject(error);
    } else {
      waiting?.resolve(reply);
    }
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`k-means worker exited with code ${code}`)));
  const next = (): Promise<ShardReply> =>
    new Promise((resolve, reject) => {
      if (failure !== null) reject(failure);
      else pending = { resolve, reject };
    });
  const ready = next();
  try {
    await ready;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    lo,
    hi,
    async step(centersT, centerNorms, k, withSums) {
      const reply = next();
      const request: ShardRequest = { type: 'step', centersT, centerNorms, k, withSums };
      worker.postMessage(request);
      const answer = await reply;
      if (answer.type !== 'step') throw new Error(`k-means worker answered ${answer.type} to a step`);
      return answer.output;
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}

async function openShards(tf: Tf, points: Float32Array, n: number, d: number, threads: number, chunkRows: number): Promise<ShardHandle[]> {
  const chunks = Math.ceil(n / chunkRows);
  const count = Math.max(1, Math.min(Math.floor(threads), chunks));
  // Blocks made of whole chunks compute exactly what one thread would, so the thread count does not change the result.
  const bounds = Array.from({ length: count + 1 }, (_, i) => Math.min(n, Math.round((i * chunks) / count) * chunkRows));
  // Workers take the later blocks and start loading their backends while this thread copies in the first block.
  const starting = Array.from({ length: count - 1 }, (_, i) => workerShard(points, bounds[i + 1] as number, bounds[i + 2] as number, d, chunkRows));
  const settled: PromiseSettledResult<ShardHandle>[] = [];
  try {
    const end = bounds[1] as number;
    const local = localShard(new KMeansShard(tf, points.subarray(0, end * d), end, d, chunkRows), 0, end);
    settled.push({ status: 'fulfilled', value: local });
  } catch (error) {
    settled.push({ status: 'rejected', reason: error });
  }
  settled.unshift(...(await Promise.allSettled(starting)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const handles = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed !== undefined) {
    await Promise.all(handles.map((h) => h.close()));
    throw failed.reason;
  }
  return handles;
}

/** |x|^2 of each row, accumulated in double precision. */
function rowNorms(points: Float32Array, n: number, d: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let p = i * d, end = p + d; p < end; p++) {
      const v = points[p] as number;
      s += v * v;
    }
    norms[i] = s;
  }
  return norms;
}

/** The mean over features of each feature's variance, which scales the tolerance as in scikit-learn. */
function meanVariance(points: Float32Array, n: number, d: number): number {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let f = 0, p = i * d; f < d; f++, p++) mean[f] = (mean[f] as number) + (points[p] as number);
  for (let f = 0; f < d; f++) mean[f] = (mean[f] as number) / n;
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let f = 0, p = i * d; f < d; f++, p++) {
      const v = (points[p] as number) - (mean[f] as number);
      total += v * v;
    }
  }
  return total / n / d;
}

/** Centres transposed to d x k and scaled by -2, with their squared norms: the operands of a distance step. */
function stepOperands(centers: Float32Array, k: number, d: number): { centersT: Float32Array; centerNorms: Float32Array } {
  const centersT = new Float32Array(d * k);
  const centerNorms = new Float32Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const v = centers[j * d + f] as number;
      centersT[f * k + j] = -2 * v;
      s += v * v;
    }
    centerNorms[j] = s;
  }
  return { centersT, centerNorms };
}

/** One assignment step over every shard, merged into whole-data arrays. */
async function assignAll(
  shards: readonly ShardHandle[],
  centers: Float32Array,
  k: number,
  d: number,
  labels: Int32Array,
  scores: Float32Array,
  withSums: boolean,
): Promise<{ sums: Float64Array; counts: Int32Array }> {
  const { centersT, centerNorms } = stepOperands(centers, k, d);
  // Workers come first in the list, so their requests are posted before the in-process shard blocks this thread.
  const outputs = await Promise.all(shards.map((s) => s.step(centersT, centerNorms, k, withSums)));
  const sums = new Float64Array(withSums ? k * d : 0);
  const counts = new Int32Array(k);
  shards.forEach((shard, i) => {
    const out = outputs[i] as StepOutput;
    labels.set(out.labels, shard.lo);
    scores.set(out.scores, shard.lo);
    if (out.sums !== null) for (let q = 0; q < sums.length; q++) sums[q] = (sums[q] as number) + (out.sums[q] as number);
    if (out.counts !== null) for (let j = 0; j < k; j++) counts[j] = (counts[j] as number) + (out.counts[j] as number);
  });
  return { sums, counts };
}

/**
 * Gives each empty cluster the point farthest from its centre (ties: lowest
 * index), taken from a cluster that keeps at least one point, so that the
 * result does not depend on anything but the data.
 */
function relocateEmptyClusters(
  points: Float32Array,
  d: number,
  k: number,
  labels: Int32Array,
  squared: Float64Array,
  sums: Float64Array,
  counts: Int32Array,
): void {
  for (let j = 0; j < k; j++) {
    if (counts[j] !== 0) continue;
    let far = -1;
    let farDist = -1;
    for (let i = 0; i < labels.length; i++) {
      const dist = squared[i] as number;
      if (dist > farDist && (counts[labels[i] as number] as number) > 1) {
        far = i;
        farDist = dist;
      }
    }
    if (far < 0) return;
    const from = labels[far] as number;
    for (let f = 0; f < d; f++) {
      const v = points[far * d + f] as number;
      sums[from * d + f] = (sums[from * d + f] as number) - v;
      sums[j * d + f] = v;
    }
    counts[from] = (counts[from] as number) - 1;
    counts[j] = 1;
    labels[far] = j;
    squared[far] = 0;
  }
}

/** Sums are recomputed from scratch while more than 1/INCREMENTAL_SHARE of the labels change per iteration. */
const INCREMENTAL_SHARE = 5;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Lloyd iterations from given centres, stopping like scikit-learn's. */
async function lloyd(
  shards: readonly ShardHandle[],
  points: Float32Array,
  norms: Float64Array,
  n: number,
  d: number,
  k: number,
  initial: Float32Array,
  maxIter: number,
  tolerance: number,
  run: number,
  options: KMeansOptions,
): Promise<KMeansResult> {
  let centers = Float32Array.from(initial);
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
    const step = await assignAll(shards, centers, k, d, labels, scores, resum);
    changed = 0;
    for (let i = 0; i < n; i++) {
      const from = previous[i] as number;
      const to = labels[i] as number;
      if (from === to) continue;
      changed++;
      if (resum) continue;
      for (let f = 0, p = i * d, a = from * d, b = to * d; f < d; f++, p++, a++, b++) {
        const v = points[p] as number;
        sums[a] = (sums[a] as number) - v;
        sums[b] = (sums[b] as number) + v;
      }
      counts[from] = (counts[from] as number) - 1;
      counts[to] = (counts[to] as number) + 1;
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
    const next = new Float32Array(k * d);
    let shift = 0;
    for (let j = 0; j < k; j++) {
      const count = counts[j] as number;
      for (let f = 0, q = j * d; f < d; f++, q++) {
        const v = count > 0 ? (sums[q] as number) / count : (centers[q] as number);
        next[q] = v;
        const delta = v - (centers[q] as number);
        shift += delta * delta;
      }
    }
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
  if (!strict) await assignAll(shards, centers, k, d, labels, scores, false);
  const { distances, inertia } = exactDistances(points, n, d, centers, labels);
  return { centers, assignment: labels, distances, inertia, iterations };
}

/** Distances to the assigned centres recomputed directly, free of the cancellation in the matrix-product form. */
function exactDistances(points: Float32Array, n: number, d: number, centers: Float32Array, labels: Int32Array): { distances: Float32Array; inertia: number } {
  const distances = new Float32Array(n);
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let f = 0, p = i * d, q = (labels[i] as number) * d; f < d; f++, p++, q++) {
      const v = (points[p] as number) - (centers[q] as number);
      s += v * v;
    }
    distances[i] = Math.sqrt(s);
    inertia += s;
  }
  return { distances, inertia };
}

/** Index of the first cumulative value at or above `value` (like NumPy's left searchsorted), clipped to the array. */
function searchSorted(cumulative: Float64Array, value: number): number {
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cumulative[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Greedy k-means++ (as scikit-learn does it): each new centre is the best of
 * 2 + ln(k) candidates drawn with probability proportional to the squared
 * distance to the nearest chosen centre. Works on a seeded sample of at most
 * `sampleSize` points; the distances are matrix products on TensorFlow.js.
 * @returns k*d initial centres.
 */
export function kmeansPlusPlus(tf: Tf, points: Float32Array, n: number, d: number, k: number, random: Random, sampleSize: number = DEFAULTS.initSampleSize): Float32Array {
  const s = Math.min(n, Math.max(k, sampleSize));
  const rows = s < n ? random.permutation(n).slice(0, s).sort() : null;
  const sample = rows === null ? points.subarray(0, n * d) : new Float32Array(s * d);
  if (rows !== null) rows.forEach((row, i) => sample.set(points.subarray(row * d, row * d + d), i * d));
  const norms = rowNorms(sample, s, d);
  const trials = 2 + Math.floor(Math.log(k));
  const centers = new Float32Array(k * d);
  const x = tf.tensor2d(sample, [s, d]);
  try {
    // Squared distances of the sample to each candidate row of the sample.
    const distancesTo = (candidates: readonly number[]): Float32Array => {
      const t = candidates.length;
      const ct = new Float32Array(d * t);
      candidates.forEach((c, j) => {
        for (let f = 0; f < d; f++) ct[f * t + j] = -2 * (sample[c * d + f] as number);
      });
      const product = tf.tidy(() => tf.matMul(x, tf.tensor2d(ct, [d, t])));
      const values = product.dataSync<'float32'>();
      product.dispose();
      for (let i = 0; i < s; i++) {
        for (let j = 0; j < t; j++) {
          const c = candidates[j] as number;
          values[i * t + j] = Math.max(0, (norms[i] as number) + (norms[c] as number) + (values[i * t + j] as number));
        }
      }
      return values;
    };
    const first = random.int(s);
    centers.set(sample.subarray(first * d, first * d + d), 0);
    const closest = Float64Array.from(distancesTo([first]));
    let potential = closest.reduce((a, b) => a + b, 0);
    const cumulative = new Float64Array(s);
    for (let c = 1; c < k; c++) {
      let running = 0;
      for (let i = 0; i < s; i++) cumulative[i] = running += closest[i] as number;
      const candidates = Array.from({ length: trials }, () => searchSorted(cumulative, random.next() * potential));
      const dist = distancesTo(candidates);
      let best = 0;
      let bestPotential = Infinity;
      for (let j = 0; j < trials; j++) {
        let pot = 0;
        for (let i = 0; i < s; i++) pot += Math.min(closest[i] as number, dist[i * trials + j] as number);
        if (pot < bestPotential) {
          best = j;
          bestPotential = pot;
        }
      }
      for (let i = 0; i < s; i++) closest[i] = Math.min(closest[i] as number, dist[i * trials + best] as number);
      potential = bestPotential;
      const chosen = candidates[best] as number;
      centers.set(sample.subarray(chosen * d, chosen * d + d), c * d);
    }
  } finally {
    x.dispose();
  }
  return centers;
}

/** k distinct points chosen uniformly at random. */
function randomCenters(points: Float32Array, n: number, d: number, k: number, random: Random): Float32Array {
  const centers = new Float32Array(k * d);
  const order = random.permutation(n);
  for (let j = 0; j < k; j++) {
    const row = order[j] as number;
    centers.set(points.subarray(row * d, row * d + d), j * d);
  }
  return centers;
}

function checkArguments(points: Float32Array, n: number, d: number, options: KMeansOptions): void {
  const { k } = options;
  if (!Number.isInteger(n) || !Number.isInteger(d) || n < 1 || d < 1) throw new RangeError(`k-means needs n >= 1 and d >= 1 (got ${n} x ${d})`);
  if (points.length < n * d) throw new RangeError(`k-means got ${points.length} values for ${n} x ${d} points`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`k must be an integer between 1 and the number of points (${n}), got ${k}`);
  const { init } = options;
  if (init instanceof Float32Array && init.length !== k * d) throw new RangeError(`initial centres need k*d = ${k * d} values, got ${init.length}`);
  if (typeof init === 'string' && !(KMEANS_INITS as readonly string[]).includes(init)) throw new RangeError(`unknown k-means initialisation "${init}"`);
}

/**
 * Lloyd's k-means on TensorFlow.js. Distances come from matrix products
 * (|x|^2 - 2 x.c + |c|^2) over chunks of rows, nearest centres from a
 * TensorFlow argmin, centre sums from a segment sum. Empty clusters take the
 * point farthest from its centre. Stopping follows scikit-learn: labels
 * unchanged, or centre shift within the relative tolerance. The same seed
 * gives the same result on the same backend.
 * @param points - n x d values, row-major.
 */
export async function kmeans(tf: Tf, points: Float32Array, n: number, d: number, options: KMeansOptions): Promise<KMeansResult> {
  checkArguments(points, n, d, options);
  const { k } = options;
  const explicit = options.init instanceof Float32Array ? options.init : null;
  const method = typeof options.init === 'string' ? options.init : 'k-means++';
  const runs = explicit === null ? Math.max(1, options.nInit ?? DEFAULTS.nInit) : 1;
  const maxIter = options.maxIter ?? DEFAULTS.maxIter;
  const chunkRows = options.chunkRows ?? DEFAULTS.chunkRows;
  const seeds = new Random(options.seed ?? DEFAULTS.seed);
  const norms = rowNorms(points, n, d);
  const tol = options.tol ?? DEFAULTS.tol;
  const tolerance = tol === 0 ? 0 : tol * meanVariance(points, n, d);
  const shards = await openShards(tf, points, n, d, options.threads ?? DEFAULTS.threads, chunkRows);
  try {
    let best: KMeansResult | null = null;
    for (let run = 0; run < runs; run++) {
      options.signal?.throwIfAborted();
      const random = new Random(seeds.int(2 ** 31));
      const initial =
        explicit ??
        (method === 'random'
          ? randomCenters(points, n, d, k, random)
          : kmeansPlusPlus(tf, points, n, d, k, random, options.initSampleSize ?? DEFAULTS.initSampleSize));
      const result = await lloyd(shards, points, norms, n, d, k, initial, maxIter, tolerance, run, options);
      if (best === null || result.inertia < best.inertia) best = result;
    }
    if (best === null) throw new Error('k-means ran no run');
    return best;
  } finally {
    await Promise.all(shards.map((s) => s.close()));
  }
}

/**
 * The slow reference: the `ml-kmeans` package run from the same explicit
 * initial centres, then a final exact assignment. Only for small data, to
 * check {@link kmeans} in tests.
 */
export async function kmeansReference(
  points: Float32Array,
  n: number,
  d: number,
  options: KMeansOptions & { readonly init: Float32Array },
): Promise<KMeansResult> {
  checkArguments(points, n, d, options);
  const { kmeans: mlKmeans } = await import('ml-kmeans');
  const { k } = options;
  const rows = Array.from({ length: n }, (_, i) => Array.from(points.subarray(i * d, i * d + d)));
  const initialization = Array.from({ length: k }, (_, j) => Array.from(options.init.subarray(j * d, j * d + d)));
  // A zero tolerance runs to the fixed point, where both implementations must agree.
  const result = mlKmeans(rows, k, { initialization, maxIterations: options.maxIter ?? DEFAULTS.maxIter, tolerance: 0 });
  const centers = Float32Array.from(result.centroids.flat());
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestDist = Infinity;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const v = (points[i * d + f] as number) - (centers[j * d + f] as number);
        s += v * v;
      }
      if (s < bestDist) {
        best = j;
        bestDist = s;
      }
    }
    labels[i] = best;
  }
  const { distances, inertia } = exactDistances(points, n, d, centers, labels);
  return { centers, assignment: labels, distances, inertia, iterations: result.iterations };
}
