import { KMEANS_ALGORITHMS, KMEANS_INITS, type KMeansOptions } from './types.js';

/** Throws a RangeError when the points, k, the initial centres or the algorithm are unusable. */
export function checkArguments(points: Float32Array, n: number, d: number, options: KMeansOptions): void {
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

