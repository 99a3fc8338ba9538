import { ndarray } from '../util/npy.js';
import { readImages } from './inputs.js';
import type { StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** The `with` block of a `features` stage. */
export interface FeaturesParams {
  /** `pca`, or `none`: the pixels themselves (/255), so a grid can put both feature spaces on one axis. */
  readonly method: 'pca' | 'none';
  /** Principal components kept. */
  readonly components: number;
  /** Divide each component by its standard deviation. */
  readonly whiten: boolean;
}

/** The summary a `features` stage returns. */
export interface FeaturesSummary extends StageSummary {
  readonly metrics: {
    readonly components: number;
    /** The share of the training images' variance the kept components explain. */
    readonly explainedVariance: number;
  };
  readonly timings: { readonly fit: number; readonly project: number };
}

/**
 * Principal component analysis of a split's training images (/255) (or,
 * with `method: none`, the pixels themselves), applied
 * to its training, validation and test images: `train.npy`, `val.npy` and
 * `test.npy` (float32, one row per image), with `components.npy`, `mean.npy`
 * and `variances.npy`. k-means, the kNN graph and typical seeds read
 * `train.npy` instead of the pixels when a features stage is among their needs.
 */
export const stage: StageType<FeaturesParams> = {
  name: 'features',
  version: 1,
  description: "Projects a split's images onto the principal components of its training images (PCA, optionally whitened).",
  heavy: true,
  numeric: true,
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      method: {
        description: "pca: project onto the principal components; none: the pixels themselves (/255), so that a matrix axis can compare feature spaces with the same needs.",
        enum: ['pca', 'none'],
        default: 'pca',
      },
      components: { description: 'The number of principal components kept (at most the number of pixels).', type: 'integer', minimum: 1, default: 50 },
      whiten: { description: "Divide each component by its standard deviation, so every kept direction has variance 1 (scikit-learn's whiten).", type: 'boolean', default: false },
    },
  },
  async run(inputs, params, ctx): Promise<FeaturesSummary> {
    const split = inputs.byType('split', 'features are fitted on the training images of a split');
    const { pixels: train, shape: [n = 0, d = 0] } = await readImages(split, 'x_train.npy', ['*', '*']);
    if (params.method === 'pca' && params.components > Math.min(d, n)) {
      throw new StageUserError(`components is ${params.components} but the training images have ${d} pixels and there are ${n} of them`, `choose components at most ${Math.min(d, n)}`);
    }
    /** Writes train.npy, val.npy and test.npy: each set's images, transformed to `width` values a row. */
    const writeSets = async (width: number, transform: (pixels: Float32Array, rows: number) => Float32Array): Promise<void> => {
      for (const [from, to] of [['x_train.npy', 'train.npy'], ['x_val.npy', 'val.npy'], ['x_test.npy', 'test.npy']] as const) {
        ctx.signal.throwIfAborted();
        const { pixels, shape: [rows = 0] } = from === 'x_train.npy' ? { pixels: train, shape: [n] } : await readImages(split, from, ['*', d]);
        await ctx.writeNpy(to, ndarray('float32', [rows, width], transform(pixels, rows)));
      }
    };
    if (params.method === 'none') {
      await writeSets(d, (pixels) => pixels);
      return { metrics: { components: d, explainedVariance: 1 }, timings: { fit: 0, project: 0 } };
    }
    const { loadTf } = await import('../ml/backend.js');
    const { fitPca, projectPca } = await import('../ml/pca.js');
    const { tf } = await loadTf((message) => ctx.log('warn', message));
    let started = performance.now();
    const model = fitPca(tf, train, n, d, params.components);
    const fit = (performance.now() - started) / 1000;
    started = performance.now();
    const c = model.c;
    await writeSets(c, (pixels, rows) => projectPca(tf, model, pixels, rows, params.whiten));
    const project = (performance.now() - started) / 1000;
    await ctx.writeNpy('components.npy', ndarray('float32', [c, d], model.components));
    await ctx.writeNpy('mean.npy', ndarray('float32', [d], Float32Array.from(model.mean)));
    await ctx.writeNpy('variances.npy', ndarray('float32', [c], Float32Array.from(model.variances)));
    const explained = model.variances.reduce((sum, v) => sum + v, 0) / model.totalVariance;
    ctx.log('info', `PCA: ${c} components explain ${(100 * explained).toFixed(1)}% of the variance (fit ${fit.toFixed(1)} s, projection ${project.toFixed(1)} s)`);
    return { metrics: { components: c, explainedVariance: explained }, timings: { fit, project } };
  },
};
