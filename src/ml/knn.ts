import { squaredDistance } from './kmeans/distance.js';
import type { Tf } from './tf.js';

/** The k nearest neighbours of every row: n x k, nearest first, the row itself left out. */
export interface KnnGraph {
  readonly n: number;
  readonly k: number;
  /** Row indices of the neighbours, n x k. */
  readonly indices: Int32Array;
  /** Euclidean distances to them, n x k, recomputed exactly (not from the products). */
  readonly distances: Float32Array;
}

/**
 * The exact k-nearest-neighbour graph of the n x d rows of `x`. Blocks of rows
 * are scored against every row by one matrix product each (2 x.y - |y|^2;
 * native where products are), and the backend's top-k keeps each row's best
 * candidates. The products' float32 rounding could swap near-ties, so
 * twice k candidates are kept and re-ranked by their exact distances (ties:
 * lower index first).
 */
export function knnGraph(tf: Tf, x: Float32Array, n: number, d: number, k: number, options: { readonly blockRows?: number; readonly signal?: AbortSignal; readonly onBlock?: (done: number, total: number) => void } = {}): KnnGraph {
  if (k < 1 || k >= n) throw new RangeError(`k must be in [1, ${n - 1}] for ${n} rows, got ${k}`);
  const blockRows = options.blockRows ?? 512;
  // The row itself is among the top keep + 1 (at distance 0) unless another row equals it, so keep + 1 <= n.
  const keep = Math.min(n - 1, 2 * k);
  // Rows [x, 1] against columns [2y, -|y|^2]: one product gives 2 x.y - |y|^2, largest for the nearest y,
  // with no extra pass over the n x n scores.
  const rows = new Float32Array(n * (d + 1));
  const columns = new Float32Array(n * (d + 1));
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let f = 0, p = i * d, q = i * (d + 1); f < d; f++, p++, q++) {
      const v = x[p] as number;
      rows[q] = v;
      columns[q] = 2 * v;
      s += v * v;
    }
    rows[i * (d + 1) + d] = 1;
    columns[i * (d + 1) + d] = -s;
  }
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  const all = tf.tensor2d(columns, [n, d + 1]);
  try {
    for (let lo = 0; lo < n; lo += blockRows) {
      options.signal?.throwIfAborted();
      const hi = Math.min(n, lo + blockRows);
      // The backend's top-k picks the candidates: one more than kept, as the row itself is among them.
      const top = tf.tidy(() => tf.topk(tf.matMul(tf.tensor2d(rows.subarray(lo * (d + 1), hi * (d + 1)), [hi - lo, d + 1]), all, false, true), keep + 1, false).indices);
      const candidates = top.dataSync() as Int32Array;
      top.dispose();
      for (let i = lo; i < hi; i++) {
        const row = candidates.subarray((i - lo) * (keep + 1), (i - lo + 1) * (keep + 1));
        const ranked = Array.from(row, (j) => ({ j, s: squaredDistance(x, x, d, i, j) })).filter((c) => c.j !== i);
        ranked.sort((a, b) => a.s - b.s || a.j - b.j);
        for (let m = 0; m < k; m++) {
          const best = ranked[m] as { j: number; s: number };
          indices[i * k + m] = best.j;
          distances[i * k + m] = Math.sqrt(best.s);
        }
      }
      options.onBlock?.(hi, n);
    }
  } finally {
    all.dispose();
  }
  return { n, k, indices, distances };
}
