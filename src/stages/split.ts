import { ndarray } from '../util/npy.js';
import type { NdArray } from '../util/npy.js';
import { Random } from '../util/random.js';
import type { DatasetMeta } from './dataset.js';
import { readArray } from './inputs.js';
import { StageUserError } from './types.js';
import type { StageType } from './types.js';

/** The `with` block of a `split` stage. */
export interface SplitParams {
  /** The validation set's size: a count (an integer of at least 1) or a fraction of the training images (0 < f < 1). */
  readonly validation: number;
  /** The training set's size; everything not held out for validation when absent. */
  readonly train?: number;
  /** Shuffle the training images before splitting; otherwise training takes the first ones and validation the last ones. */
  readonly shuffle: boolean;
  /** The seed of the shuffle. */
  readonly seed: number;
}

/** The contents of a `split` artifact's `meta.json`: the data set's meta plus the sizes. */
export interface SplitMeta extends DatasetMeta {
  readonly counts: { readonly train: number; readonly validation: number; readonly test: number };
  readonly shuffle: boolean;
  readonly seed: number;
}

/** The sizes of the training and validation sets taken from `total` training images. */
export function splitCounts(total: number, params: Pick<SplitParams, 'validation' | 'train'>): { train: number; validation: number } {
  const { validation: v, train: t } = params;
  if (!(v > 0) || (v >= 1 && !Number.isInteger(v))) {
    throw new StageUserError(`validation must be a count of at least 1 or a fraction between 0 and 1, not ${v}`);
  }
  const validation = v < 1 ? Math.round(v * total) : v;
  if (validation < 1) throw new StageUserError(`validation ${v} of ${total} training images leaves no validation image`, 'raise the fraction or give a count');
  if (validation >= total) {
    throw new StageUserError(`validation takes ${validation} images but the data set has only ${total} training images`, 'give a smaller validation count or fraction');
  }
  const train = t ?? total - validation;
  if (!Number.isInteger(train) || train < 1) throw new StageUserError(`train must be a count of at least 1, not ${train}`);
  if (train + validation > total) {
    throw new StageUserError(`train (${train}) and validation (${validation}) together need ${train + validation} images but the data set has only ${total}`);
  }
  return { train, validation };
}

function rows(x: NdArray<'uint8'>, y: Int32Array, order: Int32Array | null, from: number, to: number): [NdArray<'uint8'>, NdArray<'int32'>] {
  const width = x.shape[1] ?? 0;
  const n = to - from;
  if (order === null) {
    return [ndarray('uint8', [n, width], x.data.slice(from * width, to * width)), ndarray('int32', [n], y.slice(from, to))];
  }
  const xs = new Uint8Array(n * width);
  const ys = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const src = order[from + i] ?? 0;
    xs.set(x.data.subarray(src * width, (src + 1) * width), i * width);
    ys[i] = y[src] ?? 0;
  }
  return [ndarray('uint8', [n, width], xs), ndarray('int32', [n], ys)];
}

/**
 * Splits a data set's training images into training and validation sets and
 * keeps its test set. By default the first images train and the last 5,000
 * validate, as in the reproduced report.
 */
export const stage: StageType<SplitParams> = {
  name: 'split',
  version: 2,
  requires: [{ types: ['dataset'], why: 'split divides the images of a dataset stage' }],
  description: 'Holds out a validation set from the training images (the last ones, or a seeded shuffle) and keeps the test set.',
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      validation: {
        description: 'The validation set: a count of images (an integer of at least 1) or a fraction of the training images (between 0 and 1).',
        oneOf: [
          { type: 'integer', minimum: 1 },
          { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
        ],
        default: 5000,
      },
      train: {
        description: 'The number of training images kept; everything not held out for validation when absent.',
        type: 'integer',
        minimum: 1,
      },
      shuffle: {
        description: 'Shuffle the training images (with seed) before splitting; otherwise training takes the first images and validation the last ones.',
        type: 'boolean',
        default: false,
      },
      seed: { description: 'The seed of the shuffle.', type: 'integer', default: 0 },
    },
  },
  async run(inputs, params, ctx) {
    const source = inputs.byType('dataset');
    const [x, trainY, testX, testY, meta] = await Promise.all([
      readArray(source, 'train_x.npy', 'uint8', ['*', '*']), readArray(source, 'train_y.npy', 'int32', ['*']),
      readArray(source, 'test_x.npy', 'uint8', ['*', '*']), readArray(source, 'test_y.npy', 'int32', ['*']),
      source.readJson<DatasetMeta>('meta.json'),
    ]);
    const y = trainY.data;
    const total = x.shape[0] ?? 0;
    const counts = splitCounts(total, params);
    const order = params.shuffle ? new Random(params.seed).permutation(total) : null;
    // Validation comes from the end so that, unshuffled, training is the first images as in the report.
    const [xTrain, yTrain] = rows(x, y, order, 0, counts.train);
    const [xVal, yVal] = rows(x, y, order, total - counts.validation, total);
    const test = testY.shape[0] ?? 0;
    await ctx.writeNpy('x_train.npy', xTrain);
    await ctx.writeNpy('y_train.npy', yTrain);
    await ctx.writeNpy('x_val.npy', xVal);
    await ctx.writeNpy('y_val.npy', yVal);
    await ctx.writeNpy('x_test.npy', testX);
    await ctx.writeNpy('y_test.npy', testY);
    const splitMeta: SplitMeta = { ...meta, counts: { train: counts.train, validation: counts.validation, test }, shuffle: params.shuffle, seed: params.seed };
    await ctx.writeJson('meta.json', splitMeta);
    return { metrics: { train: counts.train, validation: counts.validation, test }, timings: {} };
  },
};
