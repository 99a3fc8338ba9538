import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { Tensor } from '@tensorflow/tfjs';
import type { Tf } from './tf.js';

/** A fitted principal component analysis. */
export interface PcaModel {
  /** The mean of each of the d input features. */
  readonly mean: Float64Array;
  /** The c components, c x d row-major, unit length, by decreasing variance. */
  readonly components: Float32Array;
  /** The variance along each component (with n - 1 in the denominator, as scikit-learn's `explained_variance_`). */
  readonly variances: Float64Array;
  /** The data's total variance, the sum over all d features. */
  readonly totalVariance: number;
  readonly d: number;
  readonly c: number;
}

/**
 * The values of one product, its tensors freed. The values are read outside
 * `tidy`, which would otherwise walk a returned typed array element by element.
 */
function product(tf: Tf, make: () => Tensor): Float32Array {
  const result = tf.tidy(make);
  try {
    return result.dataSync() as Float32Array;
  } finally {
    result.dispose();
  }
}

/** Rows lo..hi of `x`, minus the mean, as float32. */
function centred(x: Float32Array, d: number, lo: number, hi: number, mean: Float64Array): Float32Array {
  const block = new Float32Array((hi - lo) * d);
  for (let p = 0, q = lo * d; p < block.length; p++, q++) block[p] = (x[q] as number) - (mean[p % d] as number);
  return block;
}

/**
 * Fits a PCA of the n x d rows of `x`: the covariance by matrix products over
 * blocks of rows (native where products are), then the symmetric
 * eigendecomposition of that d x d matrix. Each component's sign is fixed so
 * that its entry of largest magnitude is positive, so a fit is reproducible.
 */
export function fitPca(tf: Tf, x: Float32Array, n: number, d: number, c: number, blockRows = 4096): PcaModel {
  if (n < 2) throw new RangeError(`PCA needs at least 2 rows, got ${n}`);
  if (c < 1 || c > d || c > n) throw new RangeError(`PCA components must be in [1, min(rows, features)] = [1, ${Math.min(n, d)}], got ${c}`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let f = 0, p = i * d; f < d; f++, p++) mean[f] = (mean[f] as number) + (x[p] as number);
  for (let f = 0; f < d; f++) mean[f] = (mean[f] as number) / n;
  // Block products are summed in double precision, so n does not erode the float32 partial sums.
  const scatter = new Float64Array(d * d);
  for (let lo = 0; lo < n; lo += blockRows) {
    const hi = Math.min(n, lo + blockRows);
    const part = product(tf, () => {
      const block = tf.tensor2d(centred(x, d, lo, hi, mean), [hi - lo, d]);
      return tf.matMul(block, block, true, false);
    });
    for (let q = 0; q < scatter.length; q++) scatter[q] = (scatter[q] as number) + (part[q] as number);
  }
  const rows: number[][] = [];
  for (let a = 0; a < d; a++) {
    const row = new Array<number>(d);
    // The products are symmetric up to rounding; averaging the halves makes the matrix exactly so.
    for (let b = 0; b < d; b++) row[b] = ((scatter[a * d + b] as number) + (scatter[b * d + a] as number)) / 2 / (n - 1);
    rows.push(row);
  }
  const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const vectors = evd.eigenvectorMatrix;
  const order = values.map((_, j) => j).sort((a, b) => (values[b] as number) - (values[a] as number) || a - b);
  const components = new Float32Array(c * d);
  const variances = new Float64Array(c);
  for (let m = 0; m < c; m++) {
    const j = order[m] as number;
    variances[m] = Math.max(0, values[j] as number);
    let largest = 0;
    for (let f = 0; f < d; f++) {
      const v = vectors.get(f, j);
      if (Math.abs(v) > Math.abs(largest)) largest = v;
    }
    const sign = largest < 0 ? -1 : 1;
    for (let f = 0; f < d; f++) components[m * d + f] = sign * vectors.get(f, j);
  }
  let totalVariance = 0;
  for (let f = 0; f < d; f++) totalVariance += (rows[f] as number[])[f] as number;
  return { mean, components, variances, totalVariance, d, c };
}

/**
 * Projects the n rows of `x` onto the model's components: (x - mean) W^T,
 * divided by each component's standard deviation when `whiten`.
 */
export function projectPca(tf: Tf, model: PcaModel, x: Float32Array, n: number, whiten: boolean, blockRows = 4096): Float32Array {
  const { d, c, mean, components, variances } = model;
  if (x.length !== n * d) throw new RangeError(`PCA projection: ${x.length} values are not ${n} rows of ${d}`);
  const out = new Float32Array(n * c);
  const scale = Float32Array.from(variances, (v) => (whiten ? 1 / Math.sqrt(Math.max(v, 1e-12)) : 1));
  const w = tf.tensor2d(components, [c, d]);
  try {
    for (let lo = 0; lo < n; lo += blockRows) {
      const hi = Math.min(n, lo + blockRows);
      const part = product(tf, () => tf.matMul(tf.tensor2d(centred(x, d, lo, hi, mean), [hi - lo, d]), w, false, true));
      for (let p = 0, q = lo * c; p < part.length; p++, q++) out[q] = (part[p] as number) * (scale[p % c] as number);
    }
  } finally {
    w.dispose();
  }
  return out;
}
