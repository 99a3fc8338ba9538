import { ndarray } from '../util/npy.js';
import { trainingPoints } from './inputs.js';
import type { StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** The `with` block of a `knn-graph` stage. */
export interface KnnGraphParams {
  /** Neighbours kept per training image. */
  readonly k: number;
}

/** The summary a `knn-graph` stage returns. */
export interface KnnGraphSummary extends StageSummary {
  readonly metrics: { readonly k: number; readonly n: number; readonly d: number };
  readonly timings: { readonly total: number };
  readonly details: { readonly space: string };
}

/**
 * The exact k-nearest-neighbour graph of the training images (or of a
 * features stage's rows): `indices.npy` (int32, n x k, nearest first, the
 * image itself left out) and `distances.npy` (float32 Euclidean distances).
 * Built once and shared by every propagation and typical-seed instance that
 * needs it.
 */
export const stage: StageType<KnnGraphParams> = {
  name: 'knn-graph',
  version: 1,
  description: 'Finds the exact k nearest neighbours of every training image (or feature row) by blocked matrix products.',
  heavy: true,
  numeric: true,
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      k: { description: 'Neighbours kept per image (typical seeds read the first 20, propagation all of them).', type: 'integer', minimum: 1, default: 20 },
    },
  },
  async run(inputs, params, ctx): Promise<KnnGraphSummary> {
    const started = performance.now();
    const { loadTf } = await import('../ml/backend.js');
    const { knnGraph } = await import('../ml/knn.js');
    const { tf } = await loadTf((message) => ctx.log('warn', message));
    const { points, n, d, space } = await trainingPoints(inputs);
    if (params.k >= n) throw new StageUserError(`k is ${params.k} but there are only ${n} training images`, `choose k below ${n}`);
    const graph = knnGraph(tf, points, n, d, params.k, {
      signal: ctx.signal,
      onBlock: (done, total) => ctx.progress({ unit: 'image', step: done, total }),
    });
    await ctx.writeNpy('indices.npy', ndarray('int32', [n, params.k], graph.indices));
    await ctx.writeNpy('distances.npy', ndarray('float32', [n, params.k], graph.distances));
    const total = (performance.now() - started) / 1000;
    ctx.log('info', `kNN graph: ${n} images x ${params.k} neighbours on ${space} (${d} dimensions) in ${total.toFixed(1)} s`);
    return { metrics: { k: params.k, n, d }, timings: { total }, details: { space } };
  },
};
