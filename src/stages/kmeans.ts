import type { KMeansAlgorithm, KMeansInit } from '../ml/kmeans/kmeans.js';
import { ndarray } from '../util/npy.js';
import { trainingPoints } from './inputs.js';
import type { StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** The `with` block of a `kmeans` stage. */
export interface KMeansParams {
  /** Number of clusters. */
  readonly k: number;
  /** Runs from different initialisations; the one with the lowest inertia is kept. */
  readonly n_init: number;
  /** Maximum Lloyd iterations per run. */
  readonly max_iter: number;
  /** Relative tolerance on the centres' shift, as in scikit-learn. */
  readonly tol: number;
  /** Seed of the initialisation. */
  readonly seed: number;
  /** How the initial centres are chosen. */
  readonly init: KMeansInit;
  /** Threads sharing the distance work (each extra one is a worker thread with its own backend). */
  readonly threads: number;
  /** How each iteration finds the nearest centres; all give the same clusters. */
  readonly algorithm: KMeansAlgorithm;
}

/** The summary a `kmeans` stage returns. */
export interface KMeansSummary extends StageSummary {
  readonly metrics: {
    readonly k: number;
    /** Sum of squared distances of the images to their centres. */
    readonly inertia: number;
    /** Lloyd iterations of the kept run. */
    readonly iterations: number;
    /** Number of training images clustered. */
    readonly n: number;
  };
  /** `total`: the stage's wall time. */
  readonly timings: { readonly total: number };
}

/**
 * Clusters the training images of a split (or a features stage's rows) with k-means (k-means++ start,
 * Lloyd iterations on TensorFlow.js) and stores the centres, each image's
 * cluster and its distance to the centre.
 */
export const stage: StageType<KMeansParams> = {
  name: 'kmeans',
  version: 3,
  description: 'Clusters the training images with k-means and stores the centres, assignments and distances to the centres.',
  heavy: true,
  numeric: true,
  // Sharding over threads splits work on whole chunks: the result does not depend on it.
  untracked: ['threads'],
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    required: ['k'],
    properties: {
      k: { description: 'The number of clusters (at most the number of training images).', type: 'integer', minimum: 1 },
      n_init: { description: 'Runs from different seeded initialisations; the one with the lowest inertia is kept.', type: 'integer', minimum: 1, default: 1 },
      max_iter: { description: 'The maximum number of Lloyd iterations per run.', type: 'integer', minimum: 1, default: 100 },
      tol: {
        description: "Stop when the centres' squared shifts, summed, are at most tol times the mean per-feature variance (as in scikit-learn).",
        type: 'number',
        minimum: 0,
        default: 1e-4,
      },
      seed: { description: 'The seed of the initialisation.', type: 'integer', default: 0 },
      init: { description: 'How the initial centres are chosen: greedy k-means++ or k distinct random images.', enum: ['k-means++', 'random'], default: 'k-means++' },
      threads: {
        description: 'Threads sharing the distance computations. Keep 1 when the pipeline runs stages in parallel; the result does not depend on it.',
        type: 'integer',
        minimum: 1,
        default: 1,
      },
      algorithm: {
        description:
          "How each iteration finds the nearest centres: 'auto' is 'lloyd' where matrix products run natively (ONNX Runtime or native TensorFlow) and 'elkan' on the wasm backend's own products; 'hamerly' keeps two distance bounds per image and recomputes only the images whose centre may change; 'elkan' keeps a bound per image and centre (more memory: images x k numbers), which skips more work with many clusters; 'lloyd' recomputes every distance. All give the same clusters. 'reference' runs the ml-kmeans package from the same seeded k-means++ starts to its fixed point (tol is not used): slow, to cross-check results on small data.",
        enum: ['auto', 'hamerly', 'elkan', 'lloyd', 'reference'],
        default: 'auto',
      },
    },
  },
  async run(inputs, params, ctx): Promise<KMeansSummary> {
    const started = performance.now();
    const { points, n, d } = await trainingPoints(inputs);
    const { k } = params;
    if (k > n) throw new StageUserError(`k is ${k} but the training set has only ${n} images`, 'choose k at most the number of training images');
    const [{ loadTf }, { kmeans }] = await Promise.all([import('../ml/backend.js'), import('../ml/kmeans/kmeans.js')]);
    const { tf } = await loadTf((message) => ctx.log('warn', message));
    const result = await kmeans(tf, points, n, d, {
      k,
      nInit: params.n_init,
      maxIter: params.max_iter,
      tol: params.tol,
      seed: params.seed,
      init: params.init,
      threads: params.threads,
      algorithm: params.algorithm,
      signal: ctx.signal,
      // With several runs the count goes on across them, so the progress bar never moves back.
      onIteration: (iteration, inertia, run) =>
        ctx.progress({ unit: 'iteration', step: run * params.max_iter + iteration, total: params.n_init * params.max_iter, metrics: { inertia } }),
    });
    await ctx.writeNpy('centers.npy', ndarray('float32', [k, d], result.centers));
    await ctx.writeNpy('assignment.npy', ndarray('int32', [n], result.assignment));
    await ctx.writeNpy('distances.npy', ndarray('float32', [n], result.distances));
    const seconds = (performance.now() - started) / 1000;
    ctx.log('info', `k-means k=${k}: inertia ${result.inertia.toFixed(1)} after ${result.iterations} iterations in ${seconds.toFixed(1)} s`);
    return { metrics: { k, inertia: result.inertia, iterations: result.iterations, n }, timings: { total: seconds } };
  },
};
