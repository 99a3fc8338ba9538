import { existsSync } from 'node:fs';
import { ndarray } from '../util/npy.js';
import { readArray } from './inputs.js';
import type { SplitMetaFields } from './train.js';
import type { StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** The `with` block of a `propagate` stage. */
export interface PropagateParams {
  /** `spreading` (Zhou et al., 2004) or `poisson` (Calder et al., 2020). */
  readonly method: 'spreading' | 'poisson';
  /** Label spreading's alpha: how far labels travel. */
  readonly alpha: number;
  /** The most confident share of the training images kept, in percent (the seeds always are). */
  readonly percent: number;
  /** The solver stops when the residual is this share of the right-hand side. */
  readonly tol: number;
  readonly max_iter: number;
}

/** The summary a `propagate` stage returns. */
export interface PropagateSummary extends StageSummary {
  readonly metrics: {
    readonly samples: number;
    /** The true labels the seeds cost (the seed-labels input's own count). */
    readonly trueLabelsUsed: number;
    /** Share of the kept images whose propagated label is their true label. */
    readonly labelAccuracy: number;
    /** The same over every training image, before keeping the confident share. */
    readonly labelAccuracyAll: number;
    readonly iterations: number;
  };
  readonly timings: { readonly total: number };
  readonly details: { readonly method: string };
}

/**
 * Spreads a seed set's labels over a kNN graph of the training images and
 * keeps the most confident share, written as a seed set (`indices.npy`,
 * `y.npy`, with `confidence.npy`) that `train` reads in place of a
 * seed-labels artifact.
 */
export const stage: StageType<PropagateParams> = {
  name: 'propagate',
  version: 1,
  role: 'labelling',
  description: 'Labels every training image from a few seed labels over a kNN graph (label spreading or Poisson learning) and keeps the most confident share.',
  heavy: true,
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    required: ['method'],
    properties: {
      method: {
        description: "spreading: Zhou et al.'s label spreading, (I - alpha S) F = Y; poisson: Calder et al.'s Poisson learning, L U = B with class-share weighting.",
        enum: ['spreading', 'poisson'],
      },
      alpha: { description: 'For spreading: how far labels travel, in (0, 1).', type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.99 },
      percent: { description: 'The most confident share of the training images kept, in percent (the seed images always are).', type: 'number', exclusiveMinimum: 0, maximum: 100, default: 100 },
      tol: { description: "The conjugate-gradient solver stops when the residual is this share of the right-hand side's.", type: 'number', exclusiveMinimum: 0, default: 1e-6 },
      max_iter: { description: 'At most this many solver iterations per class.', type: 'integer', minimum: 1, default: 1000 },
    },
  },
  async run(inputs, params, ctx): Promise<PropagateSummary> {
    const started = performance.now();
    const { propagate, weightedGraph } = await import('../ml/propagate.js');
    const split = inputs.byType('split', 'propagate reads the true training labels of a split');
    const graphInput = inputs.byType('knn-graph', 'propagate spreads labels over a kNN graph');
    const seedsInput = inputs.byType('seed-labels', 'propagate starts from a seed set');
    const truth = (await readArray(split, 'y_train.npy', 'int32', ['*'])).data;
    const n = truth.length;
    const { classes } = await split.readJson<SplitMetaFields>('meta.json');
    const indices = await readArray(graphInput, 'indices.npy', 'int32', [n, '*']);
    const k = indices.shape[1] ?? 0;
    const distances = (await readArray(graphInput, 'distances.npy', 'float32', [n, k])).data;
    const seedLabels = (await readArray(seedsInput, 'y.npy', 'int32', ['*'])).data;
    if (!existsSync(seedsInput.path('indices.npy'))) {
      throw new StageUserError(
        `the seed set of ${seedsInput.stage} is not made of training images (a "centers" seed set has no indices.npy)`,
        'propagate from representatives, typical, random or all seeds',
      );
    }
    const seeds = (await readArray(seedsInput, 'indices.npy', 'int32', [seedLabels.length])).data;
    for (const row of seeds) if (row < 0 || row >= n) throw new StageUserError(`the seed set of ${seedsInput.stage} names image ${row}, outside the ${n} training images`);
    const graph = weightedGraph({ n, k, indices: indices.data, distances });
    const result = propagate(graph, seeds, seedLabels, { method: params.method, classes, alpha: params.alpha, tolerance: params.tol, maxIter: params.max_iter });
    const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => (result.confidence[b] as number) - (result.confidence[a] as number) || a - b);
    // The slack keeps 2.2% of 1500 at 33, as the seed-labels part strategy does.
    const take = Math.max(seeds.length, Math.min(n, Math.ceil((params.percent * n) / 100 - 1e-9)));
    const kept = order.slice(0, take).sort();
    const labels = kept.map((row) => result.labels[row] as number);
    const rightAmong = (rows: ArrayLike<number>): number => {
      let right = 0;
      for (let q = 0; q < rows.length; q++) if (result.labels[rows[q] as number] === truth[rows[q] as number]) right++;
      return rows.length === 0 ? 0 : right / rows.length;
    };
    await ctx.writeNpy('indices.npy', ndarray('int32', [kept.length], kept));
    await ctx.writeNpy('y.npy', ndarray('int32', [labels.length], labels));
    await ctx.writeNpy('confidence.npy', ndarray('float32', [kept.length], Float32Array.from(kept, (row) => result.confidence[row] as number)));
    const seedSummary = seedsInput.summary;
    const used = seedSummary?.metrics['trueLabelsUsed'];
    const total = (performance.now() - started) / 1000;
    const labelAccuracy = rightAmong(kept);
    ctx.log('info', `${params.method}: ${kept.length} of ${n} images kept, label accuracy ${labelAccuracy.toFixed(3)} (${result.iterations} solver iterations)`);
    return {
      metrics: {
        samples: kept.length,
        trueLabelsUsed: typeof used === 'number' ? used : seeds.length,
        labelAccuracy,
        labelAccuracyAll: rightAmong(Int32Array.from({ length: n }, (_, i) => i)),
        iterations: result.iterations,
      },
      timings: { total },
      details: { method: params.method },
    };
  },
};
