import type { Tensor, Tensor2D } from '@tensorflow/tfjs';
import type { Tf } from '../backend.js';
import { DOUBLE_SLACK, rowNorms, squaredDistance } from './distance.js';
import type { BoundsParams, StepOutput, StepParams } from './types.js';

/** The bounds a shard keeps on its rows between steps. */
interface ShardBounds {
  readonly labels: Int32Array;
  readonly upper: Float64Array;
  readonly lower: Float64Array;
  readonly centreLower: Float64Array | null;
  /** Total move of each centre since the bounds were reset; per-centre bounds are stored plus it. */
  readonly drift: Float64Array;
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

