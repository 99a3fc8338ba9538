import { classificationMetrics, loadLayersModelFromFolder, predictLayersModel } from '../ml/mlp/index.js';
import { loadTf } from '../ml/backend.js';
import { readArray, readImages } from './inputs.js';
import type { SplitMetaFields } from './train.js';
import type { StageType } from './types.js';

/** The sets an `evaluate` stage can score. */
export const EVALUATION_SPLITS = ['test', 'validation'] as const;

/** The `with` block of an `evaluate` stage. */
export interface EvaluateParams {
  /** Which set of the split to score. */
  readonly split: (typeof EVALUATION_SPLITS)[number];
}

/** The contents of an `evaluate` artifact's `metrics.json`. */
export interface EvaluationFile {
  readonly split: EvaluateParams['split'];
  readonly samples: number;
  readonly loss: number;
  readonly accuracy: number;
  /** `confusion[true][predicted]` counts. */
  readonly confusion: number[][];
  /** The accuracy within each true class; null for a class absent from the set. */
  readonly perClass: (number | null)[];
  readonly classNames?: readonly string[];
}

const FILES = {
  test: { x: 'x_test.npy', y: 'y_test.npy' },
  validation: { x: 'x_val.npy', y: 'y_val.npy' },
} as const;

/**
 * Scores a trained model on the split's test (or validation) set: loss,
 * accuracy, confusion matrix and per-class accuracy. It loads the model from
 * the saved files, so a good score also shows the saved model is usable.
 */
export const stage: StageType<EvaluateParams> = {
  name: 'evaluate',
  version: 2,
  requires: [
    { types: ['train'], why: 'evaluate measures a trained model' },
    { types: ['split'], why: 'evaluate measures the model on the test set of a split' },
  ],
  description: "Scores a trained model on the split's test or validation set (loss, accuracy, confusion matrix, per-class accuracy).",
  heavy: true,
  role: 'evaluation',
  numeric: true,
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      split: { description: 'The set to score: the held-out test set or the validation set.', enum: [...EVALUATION_SPLITS], default: 'test' },
    },
  },
  async run(inputs, params, ctx) {
    const trained = inputs.byType('train');
    const split = inputs.byType('split');
    const files = FILES[params.split];
    const [yArray, meta] = await Promise.all([readArray(split, files.y, 'int32', ['*']), split.readJson<SplitMetaFields>('meta.json')]);
    const y = yArray.data;
    const { pixels: x } = await readImages(split, files.x, [y.length, '*']);

    const { tf } = await loadTf((message) => ctx.log('warn', message));
    const model = await loadLayersModelFromFolder(tf, trained.dir);
    let probs: Float32Array;
    try {
      probs = predictLayersModel(tf, model, x, y.length);
    } finally {
      model.dispose();
    }
    const metrics = classificationMetrics(probs, y, meta.classes);
    const file: EvaluationFile = {
      split: params.split,
      samples: y.length,
      ...metrics,
      ...(meta.classNames !== undefined ? { classNames: meta.classNames } : {}),
    };
    await ctx.writeJson('metrics.json', file);
    const trainSamples = trained.summary?.metrics['samples'];
    return {
      metrics: { samples: y.length, accuracy: metrics.accuracy, loss: metrics.loss, ...(typeof trainSamples === 'number' ? { trainSamples } : {}) },
      timings: {},
      details: { split: params.split },
    };
  },
};
