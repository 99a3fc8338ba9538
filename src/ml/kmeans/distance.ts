/** |x|^2 of each row, accumulated in double precision. */
export function rowNorms(points: Float32Array, n: number, d: number): Float64Array {
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
export function meanVariance(points: Float32Array, n: number, d: number): number {
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
export function stepOperands(centers: Float32Array, k: number, d: number): { centersT: Float32Array; centerNorms: Float32Array } {
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

/** Slack on distances computed in double from float32 values, so that a bound never ends up on the wrong side. */
export const DOUBLE_SLACK = 1e-9;

/** Exact squared distance of row i of `points` to row j of `centers` (both d wide), in double precision: the one copy of this loop. */
export function squaredDistance(points: Float32Array, centers: Float32Array, d: number, i: number, j: number): number {
  let s = 0;
  for (let f = 0, p = i * d, q = j * d; f < d; f++, p++, q++) {
    const v = (points[p] as number) - (centers[q] as number);
    s += v * v;
  }
  return s;
}

/** Distances to the assigned centres recomputed directly, free of the cancellation in the matrix-product form. */
export function exactDistances(points: Float32Array, n: number, d: number, centers: Float32Array, labels: Int32Array): { distances: Float32Array; inertia: number } {
  const distances = new Float32Array(n);
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    const s = squaredDistance(points, centers, d, i, labels[i] as number);
    distances[i] = Math.sqrt(s);
    inertia += s;
  }
  return { distances, inertia };
}

