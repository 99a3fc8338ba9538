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

/** Exact squared distance between rows i and j of `x`, in double precision. */
function exactSquared(x: Float32Array, d: number, i: number, j: number): number {
  let s = 0;
  for (let f = 0, p = i * d, q = j * d; f < d; f++, p++, q++) {
    const v = (x[p] as number) - (x[q] as number);
    s += v * v;
  }
  return s;
}

/**
 * The exact k-nearest-neighbour graph of the n x d rows of `x`. Blocks of rows
 * are scored against every row by one matrix product each (|y|^2 - 2 x.y;
 * native where products are), and each row keeps its best candidates in a
 * small sorted list. The products' float32 rounding could swap near-ties, so
 * twice k candidates are kept and re-ranked by their exact distances (ties:
 * lower index first).
 */
export function knnGraph(tf: Tf, x: Float32Array, n: number, d: number, k: number, options: { readonly blockRows?: number; readonly signal?: AbortSignal; readonly onBlock?: (done: number, total: number) => void } = {}): KnnGraph {
  if (k < 1 || k >= n) throw new RangeError(`k must be in [1, ${n - 1}] for ${n} rows, got ${k}`);
  const blockRows = options.blockRows ?? 512;
  const keep = Math.min(n - 1, 2 * k);
  const norms = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let f = 0, p = i * d; f < d; f++, p++) s += (x[p] as number) * (x[p] as number);
    norms[i] = s;
  }
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  const all = tf.tensor2d(x, [n, d]);
  const candIndex = new Int32Array(keep);
  const candScore = new Float32Array(keep);
  try {
    for (let lo = 0; lo < n; lo += blockRows) {
      options.signal?.throwIfAborted();
      const hi = Math.min(n, lo + blockRows);
      const dots = tf.tidy(() => tf.matMul(tf.tensor2d(x.subarray(lo * d, hi * d), [hi - lo, d]), all, false, true).dataSync() as Float32Array);
      for (let i = lo; i < hi; i++) {
        const row = (i - lo) * n;
        let size = 0;
        let worst = Infinity;
        for (let j = 0; j < n; j++) {
          if (j === i) continue;
          const score = (norms[j] as number) - 2 * (dots[row + j] as number);
          if (size === keep && score >= worst) continue;
          // Insertion into the sorted candidate list; few scores get this far once it is full.
          let p = size === keep ? keep - 1 : size++;
          while (p > 0 && (candScore[p - 1] as number) > score) {
            candScore[p] = candScore[p - 1] as number;
            candIndex[p] = candIndex[p - 1] as number;
            p--;
          }
          candScore[p] = score;
          candIndex[p] = j;
          if (size === keep) worst = candScore[keep - 1] as number;
        }
        const ranked = Array.from(candIndex.subarray(0, size), (j) => ({ j, s: exactSquared(x, d, i, j) }));
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
