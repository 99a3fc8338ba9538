import type { Tf } from '../backend.js';
import type { Random } from '../../util/random.js';
import { rowNorms } from './distance.js';
import { DEFAULTS } from './types.js';

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
export function randomCenters(points: Float32Array, n: number, d: number, k: number, random: Random): Float32Array {
  const centers = new Float32Array(k * d);
  const order = random.permutation(n);
  for (let j = 0; j < k; j++) {
    const row = order[j] as number;
    centers.set(points.subarray(row * d, row * d + d), j * d);
  }
  return centers;
}

