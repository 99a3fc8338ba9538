import type { Tensor, Tensor2D } from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { Random } from '../util/random.js';
import type { Tf } from './backend.js';
import { threadChannel, type ThreadErrorReply } from './thread-channel.js';
import { productsNative } from './native-matmul.js';

/** How the initial centres are chosen when they are not given explicitly. */
export const KMEANS_INITS = ['k-means++', 'random'] as const;
/** An initialisation method's name. */
export type KMeansInit = (typeof KMEANS_INITS)[number];

/**
 * How the iterations find the nearest centres: `lloyd` computes every
 * point's distance to every centre each iteration; `hamerly` keeps two
 * bounds per point (its centre, the second-nearest) and recomputes only the
 * points whose nearest centre may have changed; `elkan` keeps a lower bound
 * per point and centre (n*k values), which settles more points when the
 * centres are many and move unevenly. All give the same assignments (up to
 * float ties). `auto` picks `lloyd` where products are native (ONNX Runtime or
 * native TensorFlow: the bounds' bookkeeping then costs more than the
 * products it saves) and `elkan` on the wasm backend's own products.
 */
export const KMEANS_ALGORITHMS = ['auto', 'hamerly', 'elkan', 'lloyd'] as const;
/** An iteration algorithm's name. */
export type KMeansAlgorithm = (typeof KMEANS_ALGORITHMS)[number];

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
  /** How the nearest centres are found each iteration (see {@link KMEANS_ALGORITHMS}). Default `auto`. */
  readonly algorithm?: KMeansAlgorithm;
  /**
   * Called after each Lloyd iteration with the inertia against the centres it
   * started from (with the bounded algorithms, computed from the cluster sums).
   */
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
  /**
   * Rows whose distances to every centre were computed, summed over the
   * iterations of the best run (n per iteration for `lloyd`): the work the
   * bounds saved.
   */
  readonly scoredRows: number;
}

const DEFAULTS = { nInit: 1, maxIter: 300, tol: 1e-4, seed: 0, threads: 1, chunkRows: 4096, initSampleSize: 20000, algorithm: 'auto' } as const;

/** The operands and options of one assignment step on a block of rows. */
export interface StepParams {
  /** The centres transposed, d x k, and multiplied by -2. */
  readonly centersT: Float32Array;
  /** |c|^2 of each centre. */
  readonly centerNorms: Float32Array;
  readonly k: number;
  /** Also sum the rows of each cluster (the update step); only with every row. */
  readonly withSums: boolean;
  /** Also return the second-smallest score of each row (the bounds of `hamerly` need it). */
  readonly withSecond: boolean;
  /** Also return every score of each row (the bounds of `elkan` need them). */
  readonly withAll: boolean;
  /** Only these rows (ascending indices within the block), or every row when null. */
  readonly rows: Int32Array | null;
  /** Bounded algorithms: keep or use the shard's distance bounds (see {@link BoundsParams}). */
  readonly bounds?: BoundsParams;
}

/**
 * What a shard needs to keep and use distance bounds on its rows. With
 * `reset`, the step scores every row and sets the bounds from the scores;
 * with `check`, it first applies the given relabelling and centre moves to
 * the bounds, then scores only the rows the bounds cannot settle.
 */
export interface BoundsParams {
  readonly mode: 'reset' | 'check';
  /** Elkan's per-centre lower bounds rather than Hamerly's single one. */
  readonly perCentre: boolean;
  /** The centres (k*d), to tighten upper bounds with exact distances. */
  readonly centers: Float32Array;
  /** Half the distance from each centre to its nearest other centre. */
  readonly half: Float64Array;
  /** A score's rounding error is at most errorScale * (|x|^2 + centerMax). */
  readonly errorScale: number;
  readonly centerMax: number;
  /** How far each centre moved since the bounds were last used. */
  readonly moves: Float64Array | null;
  /** Rows (block indices) given a new label outside the steps, with the label: pairs. */
  readonly relabel: Int32Array | null;
}

/** The bounds a shard keeps on its rows between steps. */
interface ShardBounds {
  readonly labels: Int32Array;
  readonly upper: Float64Array;
  readonly lower: Float64Array;
  readonly centreLower: Float64Array | null;
  /** Total move of each centre since the bounds were reset; per-centre bounds are stored plus it. */
  readonly drift: Float64Array;
}

/** What one Lloyd step on a block of rows produces. */
export interface StepOutput {
  /** Nearest centre of each row. */
  readonly labels: Int32Array;
  /** min over centres of |c|^2 - 2 x.c: the squared distance without the |x|^2 term. */
  readonly scores: Float32Array;
  /** The second-smallest such score of each row, when asked for (Infinity when k is 1). */
  readonly seconds: Float32Array | null;
  /** Every score |c|^2 - 2 x.c of each row (rows x k), when asked for. */
  readonly all: Float32Array | null;
  /** Per-cluster sums of the rows (k*d), when asked for. */
  readonly sums: Float64Array | null;
  /** Per-cluster row counts, when sums are asked for. */
  readonly counts: Int32Array | null;
  /** Rows scored against every centre. */
  readonly scoredRows: number;
}

/**
 * A block of rows held as TensorFlow.js tensors, and the work of a Lloyd step
 * on them: nearest centres by matrix products, then per-cluster sums. Used
 * in-process and inside worker threads.
 */
export class KMeansShard {
  private readonly chunks: { readonly rows: number; readonly x: Tensor2D }[] = [];
  /** Room for the rows of one chunk, gathered. */
  private scratch: Float32Array | null = null;
  /** |x|^2 of each row, once bounds are used. */
  private norms: Float64Array | null = null;
  /** The bounds of the bounded algorithms. */
  private bounds: ShardBounds | null = null;
  /** The scores of the last reset, until the bounds are set from them. */
  private unsettled: { readonly out: StepOutput; readonly params: BoundsParams; readonly k: number } | null = null;

  /**
   * Copies the rows into tensors, `chunkRows` at a time.
   * @param points - `rows` x `d` values, row-major; kept (not copied) to gather the rows a step asks for.
   */
  constructor(private readonly tf: Tf, private readonly points: Float32Array, readonly rows: number, readonly d: number, chunkRows: number) {
    for (let lo = 0; lo < rows; lo += chunkRows) {
      const hi = Math.min(rows, lo + chunkRows);
      this.chunks.push({ rows: hi - lo, x: tf.tensor2d(points.subarray(lo * d, hi * d), [hi - lo, d]) });
    }
  }

  /** Assigns every row, or the rows asked for, to its nearest centre. */
  step(params: StepParams): StepOutput {
    if (params.bounds !== undefined) return params.bounds.mode === 'reset' ? this.resetBounds(params, params.bounds) : this.checkBounds(params, params.bounds);
    const { tf, d } = this;
    const { centersT, centerNorms, k, withSums, withSecond, withAll, rows } = params;
    if (rows !== null && withSums) throw new Error('k-means shard: cluster sums need every row');
    const m = rows === null ? this.rows : rows.length;
    const labels = new Int32Array(m);
    const scores = new Float32Array(m);
    const seconds = withSecond ? new Float32Array(m) : null;
    const every = withAll ? new Float32Array(m * k) : null;
    const sums = withSums ? new Float64Array(k * d) : null;
    const counts = withSums ? new Int32Array(k) : null;
    // The transposed form keeps the big product a plain matMul, several times faster on wasm than a transposed one.
    const ct = tf.tensor2d(centersT, [d, k]);
    const bias = tf.tensor1d(centerNorms);
    try {
      let offset = 0;
      let lo = 0;
      let next = 0;
      for (const chunk of this.chunks) {
        const hi = lo + chunk.rows;
        let count = chunk.rows;
        let picked: Tensor2D | null = null;
        if (rows !== null) {
          let end = next;
          while (end < rows.length && (rows[end] as number) < hi) end++;
          count = end - next;
          // Gathering within a chunk keeps which rows share a product independent of the thread count.
          if (count > 0 && count < chunk.rows) {
            // Copied here rather than with a TensorFlow gather, which is far slower on wasm; the scratch is reused
            // because first writes to freshly allocated memory cost more than the copy.
            this.scratch ??= new Float32Array((this.chunks[0]?.rows ?? 0) * d);
            const block = this.scratch.subarray(0, count * d);
            for (let q = 0; q < count; q++) {
              const row = rows[next + q] as number;
              block.set(this.points.subarray(row * d, row * d + d), q * d);
            }
            picked = tf.tensor2d(block, [count, d]);
          }
          next = end;
        }
        lo = hi;
        if (count === 0) continue;
        const x = picked ?? chunk.x;
        const outputs = tf.tidy((): Tensor[] => {
          const s = tf.fused.matMul({ a: x, b: ct, bias });
          return withSecond || withAll ? [tf.argMin(s, 1), tf.min(s, 1), s] : [tf.argMin(s, 1), tf.min(s, 1)];
        });
        picked?.dispose();
        const [argT, minT, all] = outputs as [Tensor, Tensor, Tensor | undefined];
        const chunkLabels = argT.dataSync<'int32'>();
        labels.set(chunkLabels, offset);
        scores.set(minT.dataSync<'float32'>(), offset);
        const values = all?.dataSync<'float32'>();
        if (every !== null && values !== undefined) every.set(values, offset * k);
        if (seconds !== null && values !== undefined) {
          for (let q = 0, p = 0; q < count; q++, p += k) {
            const own = p + (chunkLabels[q] as number);
            let second = Infinity;
            for (let c = p, end = p + k; c < end; c++) if (c !== own && (values[c] as number) < second) second = values[c] as number;
            seconds[offset + q] = second;
          }
        }
        for (const t of outputs) t.dispose();
        if (sums !== null && counts !== null) this.addClusterSums(chunk.x, chunkLabels, k, sums, counts);
        offset += count;
      }
    } finally {
      ct.dispose();
      bias.dispose();
    }
    return { labels, scores, seconds, all: every, sums, counts, scoredRows: m };
  }

  /**
   * Scores every row and keeps the scores; the bounds are set from them by the
   * next check, since while many labels change the next step is a reset again.
   */
  private resetBounds(params: StepParams, b: BoundsParams): StepOutput {
    const out = this.step({ ...params, bounds: undefined, rows: null, withSecond: !b.perCentre, withAll: b.perCentre });
    // Copies, because a worker thread hands the returned arrays over to the caller.
    this.unsettled = { out: { ...out, labels: out.labels.slice(), scores: out.scores.slice() }, params: b, k: params.k };
    return { ...out, seconds: null, all: null };
  }

  /** Sets the bounds from the scores kept by the last reset. */
  private settleBounds(): void {
    const kept = this.unsettled;
    if (kept === null) return;
    this.unsettled = null;
    const { out, params: b, k } = kept;
    this.norms ??= rowNorms(this.points, this.rows, this.d);
    const bounds: ShardBounds = {
      labels: out.labels,
      upper: new Float64Array(this.rows),
      lower: new Float64Array(b.perCentre ? 0 : this.rows),
      centreLower: b.perCentre ? new Float64Array(this.rows * k) : null,
      drift: new Float64Array(k),
    };
    this.bounds = bounds;
    for (let i = 0; i < this.rows; i++) this.setBounds(bounds, i, out, i, k, b);
  }

  /** Bounds of row i from its scores (row q of a step's output). */
  private setBounds(bounds: ShardBounds, i: number, out: StepOutput, q: number, k: number, b: BoundsParams): void {
    const norm = (this.norms as Float64Array)[i] as number;
    const error = b.errorScale * (norm + b.centerMax);
    bounds.upper[i] = Math.sqrt(Math.max(0, norm + (out.scores[q] as number)) + error);
    if (bounds.centreLower !== null && out.all !== null) {
      const { centreLower, drift } = bounds;
      for (let j = 0, c = i * k, at = q * k; j < k; j++, c++, at++) centreLower[c] = Math.sqrt(Math.max(0, norm + (out.all[at] as number) - error)) + (drift[j] as number);
    } else if (out.seconds !== null) {
      bounds.lower[i] = Math.sqrt(Math.max(0, norm + (out.seconds[q] as number) - error));
    }
  }

  /**
   * True when the bounds prove that the matrix-product scores would still pick
   * the assigned centre, by more than their rounding error (`margin`, on
   * squared distances): every other centre is farther than sqrt(u^2 +
   * margin), by its lower bound or because it is at least 2 s away from the
   * assigned centre (s its half gap).
   */
  private settled(bounds: ShardBounds, i: number, a: number, u: number, half: number, margin: number, k: number): boolean {
    const threshold = Math.sqrt(u * u + margin);
    if (2 * half - u > threshold) return true;
    const { centreLower, drift } = bounds;
    if (centreLower === null) return (bounds.lower[i] as number) > threshold;
    for (let j = 0, c = i * k; j < k; j++, c++) if (j !== a && (centreLower[c] as number) - (drift[j] as number) <= threshold) return false;
    return true;
  }

  /** Applies relabelling and moves to the bounds, then scores the rows they cannot settle. */
  private checkBounds(params: StepParams, b: BoundsParams): StepOutput {
    this.settleBounds();
    const bounds = this.bounds;
    const norms = this.norms;
    if (bounds === null || norms === null) throw new Error('k-means shard: bounds checked before they were set');
    const { k } = params;
    const { d, points } = this;
    const { labels, upper, lower, drift } = bounds;
    if (b.relabel !== null) {
      for (let q = 0; q < b.relabel.length; q += 2) {
        const i = b.relabel[q] as number;
        labels[i] = b.relabel[q + 1] as number;
        // The new centre is the point itself, but no bound is known until it is scored again.
        upper[i] = Infinity;
      }
    }
    if (b.moves !== null) {
      const moves = b.moves;
      let most = 0;
      let mostAt = -1;
      let secondMost = 0;
      for (let j = 0; j < k; j++) {
        const m = moves[j] as number;
        if (m > most) {
          secondMost = most;
          most = m;
          mostAt = j;
        } else if (m > secondMost) {
          secondMost = m;
        }
        drift[j] = (drift[j] as number) + m;
      }
      for (let i = 0; i < this.rows; i++) {
        const a = labels[i] as number;
        upper[i] = (upper[i] as number) + (moves[a] as number);
        if (bounds.centreLower === null) lower[i] = Math.max(0, (lower[i] as number) - (a === mostAt ? secondMost : most));
      }
    }
    const pending: number[] = [];
    for (let i = 0; i < this.rows; i++) {
      const a = labels[i] as number;
      const half = b.half[a] as number;
      const margin = 2 * b.errorScale * ((norms[i] as number) + b.centerMax);
      if (this.settled(bounds, i, a, upper[i] as number, half, margin, k)) continue;
      const u = Math.sqrt(squaredDistance(points, b.centers, d, i, a)) * (1 + DOUBLE_SLACK);
      upper[i] = u;
      if (!this.settled(bounds, i, a, u, half, margin, k)) pending.push(i);
    }
    if (pending.length > 0) {
      const rows = Int32Array.from(pending);
      const out = this.step({ ...params, bounds: undefined, rows, withSums: false, withSecond: !b.perCentre, withAll: b.perCentre });
      for (let q = 0; q < rows.length; q++) {
        const i = rows[q] as number;
        this.setBounds(bounds, i, out, q, k, b);
        labels[i] = out.labels[q] as number;
      }
    }
    return { labels: labels.slice(), scores: new Float32Array(0), seconds: null, all: null, sums: null, counts: null, scoredRows: pending.length };
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
export type ShardRequest = { readonly type: 'step' } & StepParams;
/** A worker thread's answers. */
export type ShardReply =
  | { readonly type: 'ready' }
  | { readonly type: 'step'; readonly output: StepOutput }
  | ThreadErrorReply;
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
  step(params: StepParams): Promise<StepOutput>;
  close(): Promise<void>;
}

function localShard(shard: KMeansShard, lo: number, hi: number): ShardHandle {
  return {
    lo,
    hi,
    step: async (params) => shard.step(params),
    close: async () => shard.dispose(),
  };
}

async function workerShard(points: Float32Array, lo: number, hi: number, d: number, chunkRows: number): Promise<ShardHandle> {
  const rows = points.slice(lo * d, hi * d);
  const init: ShardInit = { points: rows, rows: hi - lo, d, chunkRows };
  const worker = new Worker(new URL('./kmeans-worker.js', import.meta.url), { workerData: init, transferList: [rows.buffer] });
  const channel = threadChannel<ShardReply>(worker, 'k-means worker');
  try {
    await channel.next();
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    lo,
    hi,
    async step(params) {
      const reply = channel.next();
      const request: ShardRequest = { type: 'step', ...params };
      worker.postMessage(request);
      const answer = await reply;
      if (answer.type !== 'step') throw new Error(`k-means worker answered ${answer.type} to a step`);
      return answer.output;
    },
    close: () => channel.close(),
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
  operands: { centersT: Float32Array; centerNorms: Float32Array },
  k: number,
  d: number,
  labels: Int32Array,
  scores: Float32Array,
  withSums: boolean,
  bounds?: BoundsParams,
): Promise<{ sums: Float64Array; counts: Int32Array }> {
  const params: StepParams = { ...operands, k, withSums, withSecond: false, withAll: false, rows: null, ...(bounds === undefined ? {} : { bounds }) };
  // Workers come first in the list, so their requests are posted before the in-process shard blocks this thread.
  const outputs = await Promise.all(shards.map((s) => s.step(params)));
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

/** The means of the clusters (an empty cluster keeps its centre), and the squared shift from `centers`, summed. */
function updateCenters(centers: Float32Array, sums: Float64Array, counts: Int32Array, k: number, d: number): { next: Float32Array; shift: number } {
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
  return { next, shift };
}

/** Moves point i's row from one cluster's sum to another's. */
function moveRow(points: Float32Array, d: number, i: number, from: number, to: number, sums: Float64Array, counts: Int32Array): void {
  for (let f = 0, p = i * d, a = from * d, b = to * d; f < d; f++, p++, a++, b++) {
    const v = points[p] as number;
    sums[a] = (sums[a] as number) - v;
    sums[b] = (sums[b] as number) + v;
  }
  counts[from] = (counts[from] as number) - 1;
  counts[to] = (counts[to] as number) + 1;
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
): number[] {
  const moved: number[] = [];
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
    if (far < 0) break;
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
    moved.push(far);
  }
  return moved;
}

/** Sums are recomputed from scratch while more than 1/INCREMENTAL_SHARE of the labels change per iteration. */
const INCREMENTAL_SHARE = 5;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** What every run of one {@link kmeans} call shares. */
interface RunSetup {
  readonly shards: readonly ShardHandle[];
  readonly points: Float32Array;
  /** |x|^2 of each point. */
  readonly norms: Float64Array;
  readonly n: number;
  readonly d: number;
  readonly k: number;
  readonly maxIter: number;
  /** The absolute tolerance on the summed squared shift. */
  readonly tolerance: number;
  readonly options: KMeansOptions;
}

/** Lloyd iterations from given centres, stopping like scikit-learn's. */
async function lloyd(setup: RunSetup, initial: Float32Array, run: number): Promise<KMeansResult> {
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

/** Slack on distances computed in double from float32 values, so that a bound never ends up on the wrong side. */
const DOUBLE_SLACK = 1e-9;

/** Half the distance from each centre to its nearest other centre (Infinity when k is 1), shrunk by the slack. */
function halfGaps(centers: Float32Array, k: number, d: number): Float64Array {
  const half = new Float64Array(k).fill(Infinity);
  for (let a = 0; a < k; a++) {
    for (let b = a + 1; b < k; b++) {
      let s = 0;
      for (let f = 0, p = a * d, q = b * d; f < d; f++, p++, q++) {
        const v = (centers[p] as number) - (centers[q] as number);
        s += v * v;
      }
      const h = 0.5 * Math.sqrt(s) * (1 - DOUBLE_SLACK);
      if (h < (half[a] as number)) half[a] = h;
      if (h < (half[b] as number)) half[b] = h;
    }
  }
  return half;
}

/** How far each centre moved, grown by the slack. */
function centreMoves(before: Float32Array, after: Float32Array, k: number, d: number): Float64Array {
  const moves = new Float64Array(k);
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let f = 0, q = j * d; f < d; f++, q++) {
      const v = (after[q] as number) - (before[q] as number);
      s += v * v;
    }
    moves[j] = Math.sqrt(s) * (1 + DOUBLE_SLACK);
  }
  return moves;
}

/** Exact squared distance of point i to centre j, in double precision. */
function squaredDistance(points: Float32Array, centers: Float32Array, d: number, i: number, j: number): number {
  let s = 0;
  for (let f = 0, p = i * d, q = j * d; f < d; f++, p++, q++) {
    const v = (points[p] as number) - (centers[q] as number);
    s += v * v;
  }
  return s;
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
async function bounded(setup: RunSetup, initial: Float32Array, run: number, perCentre: boolean): Promise<KMeansResult> {
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
  const { algorithm } = options;
  if (algorithm !== undefined && !(KMEANS_ALGORITHMS as readonly string[]).includes(algorithm)) throw new RangeError(`unknown k-means algorithm "${algorithm}"`);
}

/**
 * Lloyd's k-means on TensorFlow.js. Distances come from matrix products
 * (|x|^2 - 2 x.c + |c|^2) over chunks of rows, nearest centres from a
 * TensorFlow argmin, centre sums from a segment sum. By default, distance
 * bounds (see {@link KMEANS_ALGORITHMS}) skip the points whose centre cannot
 * change, with the same result as computing every distance. Empty clusters take the
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
  const asked = options.algorithm ?? DEFAULTS.algorithm;
  const algorithm = asked === 'auto' ? (productsNative(tf) ? 'lloyd' : 'elkan') : asked;
  const shards = await openShards(tf, points, n, d, options.threads ?? DEFAULTS.threads, chunkRows);
  const setup: RunSetup = { shards, points, norms, n, d, k, maxIter, tolerance, options };
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
      const result = algorithm === 'lloyd' ? await lloyd(setup, initial, run) : await bounded(setup, initial, run, algorithm === 'elkan');
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
  return { centers, assignment: labels, distances, inertia, iterations: result.iterations, scoredRows: n * result.iterations };
}
