import { existsSync } from 'node:fs';
import { loadTf } from '../ml/backend.js';
import { MlpSpecError, resolveMlp, saveMlp, trainMlp } from '../ml/mlp/index.js';
import type { Tf } from '../ml/backend.js';
import type { EpochMetrics, LabelledData, Loss, MlpSpec, MlpWeights, OptimizerName, ResolvedMlp, TrainResult } from '../ml/mlp/index.js';
import { ACTIVATIONS, LOSSES, OPTIMIZERS } from '../ml/mlp/index.js';
import { readArray, readImages } from './inputs.js';
import type { ArtifactReader, StageContext } from './types.js';
import { StageUserError } from './types.js';
import type { StageType } from './types.js';

/** The optimizer of a `train` stage. */
export interface OptimizerParams {
  readonly name: OptimizerName;
  readonly learning_rate: number;
}

/** The `with` block of a `train` stage. */
export interface TrainParams {
  /** The network, Keras-Sequential style. */
  readonly model: MlpSpec;
  readonly optimizer: OptimizerParams;
  readonly loss: Loss;
  readonly epochs: number;
  readonly batch_size: number;
  /** Seeds the initial weights and the per-epoch shuffles. */
  readonly seed: number;
  /** Shuffle the training examples before each epoch. */
  readonly shuffle: boolean;
  /** Threads sharing each batch; the result matches one thread's within float noise. */
  readonly threads: number;
  /** Opt-in: train for more epochs when `epochs` would make fewer optimizer steps than this. */
  readonly min_steps?: number;
}

/** The epochs a training runs: `epochs`, raised until `min_steps` optimizer steps are made when that is given. */
export function epochsFor(params: Pick<TrainParams, 'epochs' | 'batch_size' | 'min_steps'>, samples: number): number {
  if (params.min_steps === undefined) return params.epochs;
  const perEpoch = Math.max(1, Math.ceil(samples / params.batch_size));
  return Math.max(params.epochs, Math.ceil(params.min_steps / perEpoch));
}

/** The `meta.json` fields of a `split` artifact that training and evaluation read. */
export interface SplitMetaFields {
  readonly classes: number;
  readonly shape: readonly number[];
  readonly classNames?: readonly string[];
}

/** The report's model: 784-300-100-10, ReLU, softmax. */
export const DEFAULT_MODEL: MlpSpec = {
  input_shape: [28, 28],
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 300, activation: 'relu' },
    { type: 'dense', units: 100, activation: 'relu' },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
};

/** The JSON Schema of a `train` stage's `with`; its properties are every stage's that trains an MLP. */
export const TRAIN_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  additionalProperties: false,
  properties: {
    model: {
      description: 'The network, as a Keras Sequential model: an input shape and a list of layers.',
      type: 'object',
      additionalProperties: false,
      required: ['input_shape', 'layers'],
      default: DEFAULT_MODEL,
      properties: {
        input_shape: {
          description: 'The shape of one image, without the batch dimension; its product must equal the number of pixels.',
          type: 'array',
          items: { type: 'integer', minimum: 1 },
          minItems: 1,
          default: DEFAULT_MODEL.input_shape,
        },
        layers: {
          description: 'The layers, first to last. The last must be dense with a softmax activation and one unit per class.',
          type: 'array',
          minItems: 1,
          default: DEFAULT_MODEL.layers,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['type'],
            properties: {
              type: { description: '`flatten` reshapes to one dimension; `dense` is fully connected.', enum: ['flatten', 'dense'] },
              units: { description: 'Dense layers: the number of outputs.', type: 'integer', minimum: 1 },
              activation: { description: 'Dense layers: the activation; linear when absent.', enum: [...ACTIVATIONS] },
            },
            if: { properties: { type: { const: 'dense' } } },
            then: { required: ['units'] },
          },
        },
      },
    },
    optimizer: {
      description: 'The optimizer. Adam uses beta1 0.9, beta2 0.999 and epsilon 1e-7, as Keras does.',
      type: 'object',
      additionalProperties: false,
      default: { name: 'adam', learning_rate: 0.001 },
      properties: {
        name: { description: 'adam or sgd (plain gradient descent).', enum: [...OPTIMIZERS], default: 'adam' },
        learning_rate: { description: 'The step size.', type: 'number', exclusiveMinimum: 0, default: 0.001 },
      },
    },
    loss: { description: 'The training loss (labels are class indices).', enum: [...LOSSES], default: 'sparse_categorical_crossentropy' },
    epochs: { description: 'Passes over the training set.', type: 'integer', minimum: 1, default: 20 },
    batch_size: { description: 'Examples per gradient step.', type: 'integer', minimum: 1, default: 2000 },
    seed: { description: 'Seeds the initial weights and the shuffles.', type: 'integer', minimum: 0, default: 0 },
    shuffle: { description: 'Shuffle the training examples before each epoch.', type: 'boolean', default: true },
    min_steps: {
      description:
        'Opt-in: the fewest optimizer steps to make. Small seed sets with a large batch make one step per epoch (20 in all with the report\'s protocol) ' +
        'and never fit their labels; with min_steps, epochs are raised until epochs x batches per epoch reaches it. Left out, training follows epochs.',
      type: 'integer',
      minimum: 1,
    },
    threads: {
      description:
        'Threads sharing each batch, each computing the gradients of a part of it. Keep 1 when the pipeline runs stages in parallel; ' +
        "the result matches one thread's within float noise (the parts' gradients are added in a different order).",
      type: 'integer',
      minimum: 1,
      default: 1,
    },
  },
} as const;

/** The rows `indices` of an image matrix already in [0, 1]. */
export function gatherRows(images: { pixels: Float32Array; shape: readonly number[] }, indices: Int32Array): Float32Array {
  const [rows = 0, width = 0] = images.shape;
  const out = new Float32Array(indices.length * width);
  indices.forEach((row, i) => {
    if (row < 0 || row >= rows) throw new Error(`seed-labels index ${row} is outside x_train's ${rows} rows`);
    out.set(images.pixels.subarray(row * width, (row + 1) * width), i * width);
  });
  return out;
}

/** A labelled set, checked against the model; the data's mistakes become user errors. */
function dataset(x: Float32Array, y: Int32Array, net: ResolvedMlp, name: string): LabelledData {
  const n = y.length;
  if (n === 0) throw new StageUserError(`the ${name} set is empty`);
  if (x.length !== n * net.inputs) {
    throw new StageUserError(
      `the model's input_shape has ${net.inputs} values per example but the ${name} set has ${x.length / n}`,
      'make the product of model.input_shape equal the number of pixels',
    );
  }
  for (const label of y) {
    if (label < 0 || label >= net.classes) {
      throw new StageUserError(`the ${name} set has label ${label} but the model's last layer has ${net.classes} units`, 'give the last dense layer one unit per class');
    }
  }
  return { x, y, n };
}

export async function seedSet(seeds: ArtifactReader, split: ArtifactReader): Promise<{ x: Float32Array; y: Int32Array }> {
  const y = (await readArray(seeds, 'y.npy', 'int32', ['*'])).data;
  if (existsSync(seeds.path('indices.npy'))) {
    const indices = (await readArray(seeds, 'indices.npy', 'int32', [y.length])).data;
    return { x: gatherRows(await readImages(split, 'x_train.npy', ['*', '*']), indices), y };
  }
  return { x: (await readArray(seeds, 'x.npy', 'float32', [y.length, '*'])).data, y };
}

/** The last epoch's metrics, named `final.loss` and so on (the results' columns `train.final.loss`). */
function finalMetrics(last: EpochMetrics | undefined): Record<string, number> {
  if (last === undefined) return {};
  return {
    'final.loss': last.loss,
    'final.accuracy': last.accuracy,
    ...(last.val_loss !== undefined ? { 'final.val_loss': last.val_loss } : {}),
    ...(last.val_accuracy !== undefined ? { 'final.val_accuracy': last.val_accuracy } : {}),
  };
}

/** What {@link fitMlp} gives back: the weights, their training history, and the TensorFlow.js they were trained with. */
export interface FittedMlp {
  readonly weights: MlpWeights;
  readonly history: TrainResult['history'];
  readonly epochs: number;
  readonly seconds: number;
  readonly compute: string;
  readonly tf: Tf;
}

/**
 * Trains the MLP that `params` describe on a labelled set (named in
 * messages), validating each epoch on the split's validation set and
 * reporting progress: the training of `train`, shared by stages that train
 * models of their own (active learning). The data's mistakes are user errors.
 */
export async function fitMlp(params: TrainParams, labelled: { readonly x: Float32Array; readonly y: Int32Array; readonly name: string }, split: ArtifactReader, ctx: StageContext): Promise<FittedMlp> {
  let net: ResolvedMlp;
  try {
    net = resolveMlp(params.model, params.loss);
  } catch (error) {
    if (error instanceof MlpSpecError) throw new StageUserError(`model: ${error.message}`);
    throw error;
  }
  const meta = await split.readJson<SplitMetaFields>('meta.json');
  if (net.classes !== meta.classes) {
    throw new StageUserError(`the model's last layer has ${net.classes} units but the data set has ${meta.classes} classes`, 'give the last dense layer one unit per class');
  }
  const train = dataset(labelled.x, labelled.y, net, labelled.name);
  const yVal = (await readArray(split, 'y_val.npy', 'int32', ['*'])).data;
  const val = yVal.length > 0 ? dataset((await readImages(split, 'x_val.npy', [yVal.length, '*'])).pixels, yVal, net, 'validation') : undefined;

  const { tf, compute } = await loadTf((message) => ctx.log('warn', message));
  const began = performance.now();
  const epochs = epochsFor(params, train.n);
  if (epochs !== params.epochs) ctx.log('info', `training ${epochs} epochs instead of ${params.epochs} to make at least ${params.min_steps} optimizer steps`);
  const { weights, history } = await trainMlp(tf, params.model, train, val, {
    epochs,
    batchSize: params.batch_size,
    learningRate: params.optimizer.learning_rate,
    optimizer: params.optimizer.name,
    loss: params.loss,
    seed: params.seed,
    shuffle: params.shuffle,
    threads: params.threads,
    signal: ctx.signal,
    onEpoch: (epoch, m) => {
      const metrics: Record<string, number> = { loss: m.loss, accuracy: m.accuracy };
      if (m.val_loss !== undefined) metrics['val_loss'] = m.val_loss;
      if (m.val_accuracy !== undefined) metrics['val_accuracy'] = m.val_accuracy;
      ctx.progress({ unit: 'epoch', step: epoch, total: epochs, metrics });
    },
  });
  return { weights, history, epochs, seconds: (performance.now() - began) / 1000, compute, tf };
}

/**
 * Trains a multi-layer perceptron on the seed labels, validating on the
 * split's validation set after each epoch, and saves it in the TensorFlow.js
 * layers format (`model.json`, `weights.bin`) with its `history.json`.
 */
export const stage: StageType<TrainParams> = {
  name: 'train',
  version: 2,
  requires: [
    { types: ['split'], why: 'train reads the training images and the validation set of a split' },
    { types: ['propagate', 'seed-labels'], why: 'train learns from a seed set (or its propagated labels)' },
  ],
  description: 'Trains a Keras-style MLP on the seed labels (validating each epoch) and saves it in TensorFlow.js layers format.',
  heavy: true,
  role: 'training',
  numeric: true,
  schema: TRAIN_SCHEMA,
  async run(inputs, params, ctx) {
    const split = inputs.byType('split');
    // A propagate stage's output is a seed set too, built from a seed-labels one.
    const seeds = inputs.findType('propagate') ?? inputs.byType('seed-labels');
    const { x, y } = await seedSet(seeds, split);
    const { weights, history, epochs, seconds, compute, tf } = await fitMlp(params, { x, y, name: 'seed-labels' }, split, ctx);
    await saveMlp(tf, params.model, weights, ctx.outDir);
    await ctx.writeJson('history.json', history);
    return { metrics: { samples: y.length, epochs, ...finalMetrics(history.at(-1)) }, timings: { train: seconds }, details: { backend: compute } };
  },
};
