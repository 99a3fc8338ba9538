import { Random } from '../../util/random.js';
import type { Tf } from '../backend.js';
import { productsNative } from '../native-matmul.js';
import { checkArguments } from './arguments.js';
import { boundedStep } from './bounded.js';
import { meanVariance, rowNorms } from './distance.js';
import { kmeansPlusPlus, randomCenters } from './init.js';
import { iterate } from './iterate.js';
import { lloydStep } from './lloyd.js';
import { kmeansReference } from './reference.js';
import { openShards } from './threads.js';
import { DEFAULTS, type KMeansOptions, type KMeansResult, type RunSetup } from './types.js';

export { KMEANS_ALGORITHMS, KMEANS_INITS, type KMeansAlgorithm, type KMeansInit, type KMeansOptions, type KMeansResult } from './types.js';
export { kmeansPlusPlus } from './init.js';
export { kmeansReference } from './reference.js';

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
  // The reference runs on plain arrays in this thread and needs no shards.
  const shards = algorithm === 'reference' ? [] : await openShards(tf, points, n, d, options.threads ?? DEFAULTS.threads, chunkRows);
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
      const result =
        algorithm === 'reference'
          ? await kmeansReference(points, n, d, { ...options, init: initial })
          : await iterate(setup, initial, run, algorithm === 'lloyd' ? lloydStep(setup) : boundedStep(setup, algorithm === 'elkan'));
      if (best === null || result.inertia < best.inertia) best = result;
    }
    if (best === null) throw new Error('k-means ran no run');
    return best;
  } finally {
    await Promise.all(shards.map((s) => s.close()));
  }
}

