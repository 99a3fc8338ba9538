import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize } from 'node:path';
import type { io, LayersModel, Scalar, Sequential, Tensor, Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import { Random } from '../util/random.js';
import type { Tf } from './backend.js';
import { openGradientPool, paramLayout, partBounds, type GradientPool, type PartResult } from './mlp-parallel.js';
import { productsNative } from './native-matmul.js';

/** The activations a dense layer may use, as Keras spells them. */
export const ACTIVATIONS = ['relu', 'softmax', 'linear', 'sigmoid', 'tanh'] as const;
/** A dense layer's activation. */
export type Activation = (typeof ACTIVATIONS)[number];

/** The losses the training loop implements. */
export const LOSSES = ['sparse_categorical_crossentropy'] as const;
/** A training loss, as Keras spells it. */
export type Loss = (typeof LOSSES)[number];

/** The optimizers the training loop implements. */
export const OPTIMIZERS = ['adam', 'sgd'] as const;
/** An optimizer's name. */
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** A layer that reshapes its input to one dimension (no parameters). */
export interface FlattenLayerSpec {
  readonly type: 'flatten';
}

/** A fully connected layer: `activation(x · kernel + bias)`. */
export interface DenseLayerSpec {
  readonly type: 'dense';
  /** The number of outputs. */
  readonly units: number;
  /** The activation; `linear` when absent, as in Keras. */
  readonly activation?: Activation;
}

/** One layer of a model, as written in a pipeline. */
export type LayerSpec = FlattenLayerSpec | DenseLayerSpec;

/** A Keras-Sequential-like multi-layer perceptron, as written in a pipeline. */
export interface MlpSpec {
  /** The shape of one input example, without the batch dimension, such as `[28, 28]`. */
  readonly input_shape: readonly number[];
  /** The layers, first to last; the last must be dense with a softmax activation. */
  readonly layers: readonly LayerSpec[];
}

/** A model description that cannot be built or trained; the message says what to change. */
export class MlpSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MlpSpecError';
  }
}

/** One dense layer of a resolved model. */
export interface DenseShape {
  readonly inputs: number;
  readonly units: number;
  readonly activation: Activation;
}

/** A checked model: its input width and dense layers (flatten layers only reshape, so they vanish). */
export interface ResolvedMlp {
  readonly inputShape: readonly number[];
  /** The width of a flattened input example. */
  readonly inputs: number;
  readonly dense: readonly DenseShape[];
  /** The number of classes: the last layer's units. */
  readonly classes: number;
}

/** The parameters of one dense layer. */
export interface DenseWeights {
  /** Row-major `[inputs, units]`, the layout Keras and TensorFlow.js use. */
  readonly kernel: Float32Array;
  /** `[units]`. */
  readonly bias: Float32Array;
}

/** The parameters of a model: one entry per dense layer, first to last. */
export type MlpWeights = readonly DenseWeights[];

/** Labelled examples: `x` is row-major `[n, inputs]` (features in [0, 1]), `y` holds class indices. */
export interface LabelledData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

/** Metrics of one training epoch, named as in a Keras `History`. */
export interface EpochMetrics {
  /** 1-based. */
  readonly epoch: number;
  /** Mean training loss over the epoch's examples, as the weights changed batch by batch. */
  readonly loss: number;
  /** Training accuracy over the epoch, measured like `loss`. */
  readonly accuracy: number;
  /** Loss on the validation set with the weights at the end of the epoch. */
  readonly val_loss?: number;
  readonly val_accuracy?: number;
  /** Wall-clock time of the epoch, validation included. */
  readonly seconds: number;
}

/** How to train. */
export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: OptimizerName;
  /** Seeds the initial weights and the shuffles. */
  readonly seed: number;
  /** Shuffle the examples before each epoch (with a seeded permutation). */
  readonly shuffle: boolean;
  /** Adam's epsilon, added to sqrt(v) as Keras does; 1e-7 (Keras's default) when absent. */
  readonly adamEpsilon?: number;
  /** Defaults to `sparse_categorical_crossentropy`, the only one supported. */
  readonly loss?: Loss;
  /** Start from these weights instead of seeded Glorot-uniform kernels and zero biases. */
  readonly initialWeights?: MlpWeights;
  /** Called after each epoch, validation included. */
  readonly onEpoch?: (epoch: number, metrics: EpochMetrics) => void | Promise<void>;
  /** Checked between batches: training stops with the signal's reason. */
  readonly signal?: AbortSignal;
  /**
   * Threads sharing each batch (data parallelism); default 1. Each extra
   * thread loads its own backend and computes the gradients of a part of the
   * batch; the parts' gradients are added in a fixed order, so runs are
   * reproducible, and match one thread's within float noise (the sums are
   * grouped differently).
   */
  readonly threads?: number;
}

/** What training produces. */
export interface TrainResult {
  readonly weights: MlpWeights;
  readonly history: readonly EpochMetrics[];
}

/** Classification quality on a labelled set. */
export interface ClassificationMetrics {
  /** Mean sparse categorical cross-entropy, probabilities clipped to [1e-7, 1 - 1e-7] as Keras does. */
  readonly loss: number;
  readonly accuracy: number;
  /** `confusion[true][predicted]` counts. */
  readonly confusion: number[][];
  /** The accuracy within each true class (its recall); null for a class absent from the set. */
  readonly perClass: (number | null)[];
}

/** Keras's fuzz factor: the Adam epsilon and the probability clip of the cross-entropy. */
const KERAS_EPSILON = 1e-7;
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
/** Rows per forward pass when predicting: bounds memory, not results. */
const PREDICT_CHUNK = 4096;

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/**
 * Checks a model description and works out its layer sizes. Throws
 * MlpSpecError when it cannot be trained with `loss`.
 */
export function resolveMlp(spec: MlpSpec, loss: Loss = 'sparse_categorical_crossentropy'): ResolvedMlp {
  if (!(LOSSES as readonly string[]).includes(loss)) {
    throw new MlpSpecError(`loss "${loss}" is not supported; use ${LOSSES.map((l) => `"${l}"`).join(' or ')}`);
  }
  if (!Array.isArray(spec.input_shape) || spec.input_shape.length === 0 || !spec.input_shape.every(isPositiveInteger)) {
    throw new MlpSpecError(`input_shape must be a non-empty list of positive integers, got ${JSON.stringify(spec.input_shape)}`);
  }
  if (!Array.isArray(spec.layers) || spec.layers.length === 0) throw new MlpSpecError('layers must be a non-empty list');
  let shape: readonly number[] = spec.input_shape;
  const dense: DenseShape[] = [];
  spec.layers.forEach((layer, i) => {
    if (layer.type === 'flatten') {
      shape = [shape.reduce((a, b) => a * b, 1)];
      return;
    }
    if (layer.type !== 'dense') throw new MlpSpecError(`layer ${i + 1} has unknown type "${String((layer as { type: unknown }).type)}"; use "flatten" or "dense"`);
    if (!isPositiveInteger(layer.units)) throw new MlpSpecError(`layer ${i + 1} (dense) needs units, a positive integer, got ${JSON.stringify(layer.units)}`);
    const activation = layer.activation ?? 'linear';
    if (!(ACTIVATIONS as readonly string[]).includes(activation)) {
      throw new MlpSpecError(`layer ${i + 1} has unknown activation "${activation}"; use one of ${ACTIVATIONS.join(', ')}`);
    }
    if (shape.length !== 1) {
      throw new MlpSpecError(`layer ${i + 1} (dense) receives inputs of shape [${shape.join(', ')}]; add a flatten layer before it`);
    }
    dense.push({ inputs: shape[0] ?? 0, units: layer.units, activation });
    shape = [layer.units];
  });
  const last = spec.layers[spec.layers.length - 1];
  if (last === undefined || last.type !== 'dense' || (last.activation ?? 'linear') !== 'softmax') {
    throw new MlpSpecError(`loss "${loss}" needs a last layer that is dense with activation "softmax"`);
  }
  const hiddenSoftmax = dense.slice(0, -1).findIndex((d) => d.activation === 'softmax');
  if (hiddenSoftmax >= 0) throw new MlpSpecError('softmax is supported only as the activation of the last layer');
  return {
    inputShape: [...spec.input_shape],
    inputs: spec.input_shape.reduce((a, b) => a * b, 1),
    dense,
    classes: last.units,
  };
}

/**
 * Keras's default initial weights, seeded: Glorot-uniform kernels (uniform
 * in ±sqrt(6 / (inputs + units))) and zero biases.
 */
export function initMlpWeights(spec: MlpSpec, seed: number): MlpWeights {
  const random = new Random(seed);
  return resolveMlp(spec).dense.map(({ inputs, units }) => {
    const limit = Math.sqrt(6 / (inputs + units));
    const kernel = new Float32Array(inputs * units);
    for (let i = 0; i < kernel.length; i++) kernel[i] = (2 * random.next() - 1) * limit;
    return { kernel, bias: new Float32Array(units) };
  });
}

function checkWeights(net: ResolvedMlp, weights: MlpWeights): void {
  if (weights.length !== net.dense.length) throw new RangeError(`model has ${net.dense.length} dense layers but ${weights.length} weight sets were given`);
  net.dense.forEach((d, i) => {
    const w = weights[i];
    if (w === undefined || w.kernel.length !== d.inputs * d.units || w.bias.length !== d.units) {
      throw new RangeError(`weights of dense layer ${i + 1} do not match its shape [${d.inputs}, ${d.units}]`);
    }
  });
}

function checkData(net: ResolvedMlp, data: LabelledData, name: string): void {
  if (!Number.isInteger(data.n) || data.n < 1) throw new RangeError(`${name} set has no examples`);
  if (data.x.length !== data.n * net.inputs) throw new RangeError(`${name} set: x has ${data.x.length} values, expected ${data.n} × ${net.inputs}`);
  if (data.y.length !== data.n) throw new RangeError(`${name} set: y has ${data.y.length} labels, expected ${data.n}`);
  for (const label of data.y) {
    if (label < 0 || label >= net.classes) throw new RangeError(`${name} set has label ${label}, outside the model's ${net.classes} classes`);
  }
}

/** Parameters as tensors: kernel, bias, kernel, bias... */
function toTensors(tf: Tf, net: ResolvedMlp, weights: MlpWeights): Tensor[] {
  return net.dense.flatMap((d, i) => {
    const w = weights[i] as DenseWeights;
    return [tf.tensor2d(w.kernel, [d.inputs, d.units]), tf.tensor1d(w.bias)];
  });
}

function fromTensors(params: readonly Tensor[]): MlpWeights {
  const weights: DenseWeights[] = [];
  for (let i = 0; i < params.length; i += 2) {
    weights.push({ kernel: (params[i] as Tensor).dataSync() as Float32Array, bias: (params[i + 1] as Tensor).dataSync() as Float32Array });
  }
  return weights;
}

function dense(tf: Tf, h: Tensor2D, kernel: Tensor2D, bias: Tensor1D, activation: Activation): Tensor2D {
  switch (activation) {
    case 'relu':
    case 'linear':
      return tf.fused.matMul({ a: h, b: kernel, bias, activation }) as Tensor2D;
    case 'sigmoid':
      return tf.sigmoid(tf.fused.matMul({ a: h, b: kernel, bias })) as Tensor2D;
    case 'tanh':
      return tf.tanh(tf.fused.matMul({ a: h, b: kernel, bias })) as Tensor2D;
    case 'softmax':
      return tf.softmax(tf.fused.matMul({ a: h, b: kernel, bias }) as Tensor2D);
  }
}

/** The gradient through an activation, written in terms of the activation's output `a`. */
function activationGrad(tf: Tf, dh: Tensor2D, a: Tensor2D, activation: Activation): Tensor2D {
  switch (activation) {
    case 'relu':
      return tf.mul(dh, tf.step(a));
    case 'linear':
      return dh;
    case 'sigmoid':
      return tf.mul(dh, tf.mul(a, tf.sub(1, a)));
    case 'tanh':
      return tf.mul(dh, tf.sub(1, tf.square(a)));
    case 'softmax':
      throw new Error('softmax gradient is only taken through the cross-entropy');
  }
}

/** Hidden activations (outputs of every layer but the last) and the last layer's logits. */
function forward(tf: Tf, net: ResolvedMlp, params: readonly Tensor[], x: Tensor2D): { hidden: Tensor2D[]; logits: Tensor2D } {
  const hidden: Tensor2D[] = [];
  let h = x;
  const last = net.dense.length - 1;
  for (let l = 0; l < last; l++) {
    h = dense(tf, h, params[2 * l] as Tensor2D, params[2 * l + 1] as Tensor1D, (net.dense[l] as DenseShape).activation);
    hidden.push(h);
  }
  const logits = tf.fused.matMul({ a: h, b: params[2 * last] as Tensor2D, bias: params[2 * last + 1] as Tensor1D }) as Tensor2D;
  return { hidden, logits };
}

function predictWith(tf: Tf, net: ResolvedMlp, params: readonly Tensor[], x: Float32Array, n: number): Float32Array {
  const probs = new Float32Array(n * net.classes);
  for (let start = 0; start < n; start += PREDICT_CHUNK) {
    const rows = Math.min(PREDICT_CHUNK, n - start);
    const chunk = tf.tidy(() => {
      const xb = tf.tensor2d(x.subarray(start * net.inputs, (start + rows) * net.inputs), [rows, net.inputs]);
      return tf.softmax(forward(tf, net, params, xb).logits);
    });
    probs.set(chunk.dataSync() as Float32Array, start * net.classes);
    chunk.dispose();
  }
  return probs;
}

/**
 * The loss, accuracy, confusion matrix and per-class accuracy of predicted
 * class probabilities (row-major `[n, classes]`) against true labels. The
 * predicted class is the first most probable one.
 */
export function classificationMetrics(probs: Float32Array, y: Int32Array, classes: number): ClassificationMetrics {
  const n = y.length;
  if (probs.length !== n * classes) throw new RangeError(`expected ${n} × ${classes} probabilities, got ${probs.length}`);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const label = y[i] ?? 0;
    let best = 0;
    let bestP = -Infinity;
    for (let c = 0; c < classes; c++) {
      const p = probs[i * classes + c] ?? 0;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    const row = confusion[label];
    if (row === undefined) throw new RangeError(`label ${label} is outside the ${classes} classes`);
    row[best] = (row[best] ?? 0) + 1;
    if (best === label) correct++;
    const p = Math.min(Math.max(probs[i * classes + label] ?? 0, KERAS_EPSILON), 1 - KERAS_EPSILON);
    lossSum -= Math.log(p);
  }
  const perClass = confusion.map((row, c) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? null : (row[c] ?? 0) / total;
  });
  return { loss: n === 0 ? 0 : lossSum / n, accuracy: n === 0 ? 0 : correct / n, confusion, perClass };
}

/** Class probabilities, row-major `[n, classes]`, of a model with the given weights. */
export function predictMlp(tf: Tf, spec: MlpSpec, weights: MlpWeights, x: Float32Array, n: number): Float32Array {
  const net = resolveMlp(spec);
  checkWeights(net, weights);
  if (x.length !== n * net.inputs) throw new RangeError(`x has ${x.length} values, expected ${n} × ${net.inputs}`);
  const params = toTensors(tf, net, weights);
  try {
    return predictWith(tf, net, params, x, n);
  } finally {
    tf.dispose(params);
  }
}

/** The metrics of a model with the given weights on a labelled set. */
export function evaluateMlp(tf: Tf, spec: MlpSpec, weights: MlpWeights, data: LabelledData): ClassificationMetrics {
  const net = resolveMlp(spec);
  checkData(net, data, 'evaluation');
  return classificationMetrics(predictMlp(tf, spec, weights, data.x, data.n), data.y, net.classes);
}

/** What {@link batchGradients} returns; tensors in the caller's tidy. */
export interface BatchGradients {
  /** The cross-entropy summed over the rows, divided by `divisor`. */
  readonly loss: Scalar;
  /** How many rows the model classifies right. */
  readonly correct: Scalar;
  /** d(loss)/d(parameter), in the order of the parameters. */
  readonly grads: Tensor[];
}

/**
 * The loss of some rows and its gradients, written out so that every matrix
 * product is a plain `matMul(a, b)` where transposed products are slow (see
 * `productsNative`). `divisor` is the whole batch's size:
 * a part of a batch then yields its share of the batch mean, and the shares
 * of all parts add up to the batch's gradients.
 */
export function batchGradients(tf: Tf, net: ResolvedMlp, params: readonly Tensor[], xb: Tensor2D, yb: Tensor1D, divisor: number): BatchGradients {
  const last = net.dense.length - 1;
  const { hidden, logits } = forward(tf, net, params, xb);
  const logp = tf.logSoftmax(logits);
  // Cast rather than ask oneHot for float32: the WASM kernel ignores the dtype and writes int32 bits.
  const onehot = tf.cast(tf.oneHot(yb, net.classes), 'float32');
  const loss = tf.div(tf.neg(tf.sum(tf.mul(onehot, logp))), divisor) as Scalar;
  const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), 'float32')) as Scalar;
  // d(mean cross-entropy)/d(logits) of a softmax layer is (p - onehot) / batch.
  let dz: Tensor2D = tf.div(tf.sub(tf.exp(logp), onehot), divisor);
  const grads: Tensor[] = new Array<Tensor>(params.length);
  const flags = productsNative(tf);
  for (let l = last; l >= 0; l--) {
    const input = l === 0 ? xb : (hidden[l - 1] as Tensor2D);
    grads[2 * l] = flags ? tf.matMul(input, dz, true, false) : tf.matMul(tf.transpose(input), dz);
    grads[2 * l + 1] = tf.sum(dz, 0);
    // The first layer's input gradient is never used, so it is not computed.
    if (l > 0) {
      const weights = params[2 * l] as Tensor2D;
      const dh: Tensor2D = flags ? tf.matMul(dz, weights, false, true) : tf.matMul(dz, tf.transpose(weights));
      dz = activationGrad(tf, dh, hidden[l - 1] as Tensor2D, (net.dense[l - 1] as DenseShape).activation);
    }
  }
  return { loss, correct, grads };
}

/** Updates parameters from their gradients; owns its state tensors. */
interface Optimizer {
  /** New parameters (inside the caller's tidy); replaces the optimizer's own state. */
  step(params: readonly Tensor[], grads: readonly Tensor[]): Tensor[];
  dispose(): void;
}

function sgd(tf: Tf, learningRate: number): Optimizer {
  return {
    step: (params, grads) => params.map((p, i) => tf.sub(p, tf.mul(grads[i] as Tensor, learningRate))),
    dispose: () => {},
  };
}

/**
 * Adam as Keras writes it: epsilon is added to the uncorrected sqrt(v) and the
 * bias corrections fold into the step size. TensorFlow.js's own Adam adds it
 * to the corrected sqrt(v), which moves near-zero gradients differently.
 */
function adam(tf: Tf, learningRate: number, epsilon: number, params: readonly Tensor[]): Optimizer {
  let m = params.map((p) => tf.zerosLike(p));
  let v = params.map((p) => tf.zerosLike(p));
  let t = 0;
  return {
    step(ps, grads) {
      t++;
      const alpha = (learningRate * Math.sqrt(1 - ADAM_BETA2 ** t)) / (1 - ADAM_BETA1 ** t);
      const nextM = m.map((mi, i) => tf.add(tf.mul(mi, ADAM_BETA1), tf.mul(grads[i] as Tensor, 1 - ADAM_BETA1)));
      const nextV = v.map((vi, i) => tf.add(tf.mul(vi, ADAM_BETA2), tf.mul(tf.square(grads[i] as Tensor), 1 - ADAM_BETA2)));
      const next = ps.map((p, i) => tf.sub(p, tf.mul(tf.div(nextM[i] as Tensor, tf.add(tf.sqrt(nextV[i] as Tensor), epsilon)), alpha)));
      // The caller's tidy would free the new moments; keep them and free the old ones instead.
      tf.dispose([...m, ...v]);
      m = nextM.map((x) => tf.keep(x));
      v = nextV.map((x) => tf.keep(x));
      return next;
    },
    dispose: () => tf.dispose([...m, ...v]),
  };
}

/** Copies parameter tensors into the flat array the gradient workers read. */
function writeParams(params: readonly Tensor[], into: Float32Array, offsets: readonly number[]): void {
  params.forEach((p, j) => into.set(p.dataSync() as Float32Array, offsets[j]));
}

/** Lets timers and messages run (an abort arrives that way) between synchronous batches. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Trains a model with mini-batch gradient descent, writing the forward and
 * backward passes out by hand so that every matrix product is a plain
 * `matMul(a, b)`: TensorFlow.js's WASM backend multiplies transposed operands
 * (what automatic differentiation asks for) about ten times slower. Loss and
 * accuracy per epoch are means over the epoch's examples, as Keras reports.
 */
export async function trainMlp(
  tf: Tf,
  spec: MlpSpec,
  train: LabelledData,
  val: LabelledData | undefined,
  options: TrainOptions,
): Promise<TrainResult> {
  const net = resolveMlp(spec, options.loss);
  checkData(net, train, 'training');
  if (val !== undefined) checkData(net, val, 'validation');
  if (!isPositiveInteger(options.batchSize)) throw new RangeError(`batch size must be a positive integer, got ${options.batchSize}`);
  if (!Number.isInteger(options.epochs) || options.epochs < 0) throw new RangeError(`epochs must be a non-negative integer, got ${options.epochs}`);
  if (!(options.learningRate > 0)) throw new RangeError(`learning rate must be positive, got ${options.learningRate}`);
  const initial = options.initialWeights ?? initMlpWeights(spec, options.seed);
  checkWeights(net, initial);

  // A stream apart from the initialiser's, so the shuffles do not depend on the model's size.
  const shuffler = new Random((options.seed ^ 0x5bd1e995) >>> 0);
  const { n } = train;
  const width = net.inputs;
  const threads = options.threads ?? 1;
  if (!isPositiveInteger(threads)) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const batchRows = Math.min(options.batchSize, n);
  // More threads than rows would leave some without work.
  const parts = Math.min(threads, batchRows);
  const bounds = partBounds(batchRows, parts);
  const ownRows = bounds[1] ?? batchRows;
  const batchX = new Float32Array(ownRows * width);
  const batchY = new Int32Array(ownRows);
  const layout = paramLayout(net);
  let params = toTensors(tf, net, initial);
  const optimizer = options.optimizer === 'adam' ? adam(tf, options.learningRate, options.adamEpsilon ?? KERAS_EPSILON, params) : sgd(tf, options.learningRate);
  const history: EpochMetrics[] = [];
  let pool: GradientPool | null = null;

  /** Copies rows `start + lo .. start + hi` of the epoch's order into `x` and `y` from their beginning. */
  const gather = (order: Int32Array | null, start: number, lo: number, hi: number, x: Float32Array, y: Int32Array): void => {
    for (let i = lo; i < hi; i++) {
      const row = order === null ? start + i : (order[start + i] ?? 0);
      x.set(train.x.subarray(row * width, (row + 1) * width), (i - lo) * width);
      y[i - lo] = train.y[row] ?? 0;
    }
  };

  try {
    if (parts > 1) {
      pool = await openGradientPool(spec, net, parts - 1, Math.max(...bounds.slice(1).map((b, i) => b - (bounds[i] ?? 0))));
      writeParams(params, pool.params, layout.offsets);
    }
    const workers = pool?.workers ?? [];
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const began = performance.now();
      const order = options.shuffle ? shuffler.permutation(n) : null;
      let lossSum = 0;
      let correctSum = 0;
      for (let start = 0; start < n; start += options.batchSize) {
        await yieldToEventLoop();
        options.signal?.throwIfAborted();
        const size = Math.min(options.batchSize, n - start);
        const cut = size === batchRows ? bounds : partBounds(size, parts);
        // The workers' parts go out first, so they compute while this thread does its own.
        const pending: (Promise<PartResult> | null)[] = workers.map((w, i) => {
          const lo = cut[i + 1] ?? size;
          const hi = cut[i + 2] ?? size;
          if (hi <= lo) return null;
          gather(order, start, lo, hi, w.x, w.y);
          return w.step(hi - lo, size);
        });
        const own = cut[1] ?? size;
        let xs: Float32Array;
        let ys: Int32Array;
        if (order === null) {
          xs = train.x.subarray(start * width, (start + own) * width);
          ys = train.y.subarray(start, start + own);
        } else {
          gather(order, start, 0, own, batchX, batchY);
          xs = batchX.subarray(0, own * width);
          ys = batchY.subarray(0, own);
        }
        const [loss, correct, ...grads] = tf.tidy(() => {
          const g = batchGradients(tf, net, params, tf.tensor2d(xs, [own, width]), tf.tensor1d(ys, 'int32'), size);
          return [g.loss, g.correct, ...g.grads];
        });
        let answers: (PartResult | null)[];
        try {
          answers = await Promise.all(pending);
        } catch (error) {
          tf.dispose([loss as Scalar, correct as Scalar, ...grads]);
          throw error;
        }
        const next = tf.tidy(() => {
          // Parts are added in a fixed order (this thread's first), so the sum does not depend on which worker finished first.
          const total = grads.map((g, j) =>
            workers.reduce<Tensor>((sum, w, i) => {
              if (answers[i] === null) return sum;
              const offset = layout.offsets[j] ?? 0;
              return tf.add(sum, tf.tensor(w.grads.subarray(offset, offset + (layout.sizes[j] ?? 0)), [...(layout.shapes[j] ?? [])]));
            }, g),
          );
          return optimizer.step(params, total);
        });
        tf.dispose(grads);
        tf.dispose(params);
        params = next;
        if (pool !== null) writeParams(params, pool.params, layout.offsets);
        let batchLoss = (loss as Scalar).dataSync()[0] ?? NaN;
        let batchCorrect = (correct as Scalar).dataSync()[0] ?? NaN;
        tf.dispose([loss as Scalar, correct as Scalar]);
        for (const answer of answers) {
          if (answer === null) continue;
          batchLoss += answer.loss;
          batchCorrect += answer.correct;
        }
        lossSum += batchLoss * size;
        correctSum += batchCorrect;
      }
      let metrics: EpochMetrics = { epoch, loss: lossSum / n, accuracy: correctSum / n, seconds: 0 };
      if (val !== undefined) {
        const v = classificationMetrics(predictWith(tf, net, params, val.x, val.n), val.y, net.classes);
        metrics = { ...metrics, val_loss: v.loss, val_accuracy: v.accuracy };
      }
      metrics = { ...metrics, seconds: (performance.now() - began) / 1000 };
      history.push(metrics);
      await options.onEpoch?.(epoch, metrics);
    }
    return { weights: fromTensors(params), history };
  } finally {
    tf.dispose(params);
    optimizer.dispose();
    await pool?.close();
  }
}

/**
 * A TensorFlow.js Sequential model with the given weights, for saving in the
 * standard layers format. Layers get fixed names (`flatten_1`, `dense_1`...)
 * so the saved topology does not depend on how many models the process built.
 */
export function toLayersModel(tf: Tf, spec: MlpSpec, weights: MlpWeights): Sequential {
  const net = resolveMlp(spec);
  checkWeights(net, weights);
  const model = tf.sequential({ name: 'mlp' });
  let flattens = 0;
  let denses = 0;
  spec.layers.forEach((layer, i) => {
    const input = i === 0 ? { inputShape: [...spec.input_shape] } : {};
    if (layer.type === 'flatten') {
      model.add(tf.layers.flatten({ ...input, name: `flatten_${++flattens}` }));
    } else {
      model.add(tf.layers.dense({ ...input, units: layer.units, activation: layer.activation ?? 'linear', name: `dense_${++denses}` }));
    }
  });
  const values = toTensors(tf, net, weights);
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

/** The JSON of a TensorFlow.js layers model file (`model.json`). */
interface ModelJson {
  readonly format?: string;
  readonly generatedBy?: string;
  readonly convertedBy?: string | null;
  readonly modelTopology: unknown;
  readonly weightsManifest: readonly { readonly paths: readonly string[]; readonly weights: readonly io.WeightsManifestEntry[] }[];
  readonly trainingConfig?: io.TrainingConfig;
  readonly userDefinedMetadata?: io.ModelArtifacts['userDefinedMetadata'];
}

/** The model file of the TensorFlow.js layers format. */
export const MODEL_FILE = 'model.json';
/** The weights file of the TensorFlow.js layers format. */
export const WEIGHTS_FILE = 'weights.bin';

function joinBuffers(data: io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * An IOHandler that saves a model to, and loads it from, a folder as
 * `model.json` plus `weights.bin`: the files tfjs-node's `file://` handler
 * reads and writes, available on every backend.
 */
export function folderModelHandler(dir: string): io.IOHandler {
  return {
    async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('only JSON model topologies can be saved to a folder');
      const weights = joinBuffers(artifacts.weightData);
      const json: ModelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig !== undefined ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata !== undefined ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      const text = JSON.stringify(json);
      await writeFile(join(dir, WEIGHTS_FILE), weights);
      await writeFile(join(dir, MODEL_FILE), text);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: Buffer.byteLength(JSON.stringify(artifacts.modelTopology)),
          weightSpecsBytes: Buffer.byteLength(JSON.stringify(artifacts.weightSpecs ?? [])),
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<io.ModelArtifacts> {
      const json = JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as ModelJson;
      const weightSpecs: io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) {
          // A model folder is self-contained: refuse manifests that point outside it.
          if (isAbsolute(path) || normalize(path).startsWith('..')) throw new Error(`${MODEL_FILE} refers to weights outside its folder: ${path}`);
          buffers.push(await readFile(join(dir, path)));
        }
      }
      const weightData = joinBuffers(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer)).buffer as ArrayBuffer;
      return {
        modelTopology: json.modelTopology as io.ModelArtifacts['modelTopology'],
        weightSpecs,
        weightData,
        ...(json.format !== undefined ? { format: json.format } : {}),
        ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
        ...(json.convertedBy != null ? { convertedBy: json.convertedBy } : {}),
        ...(json.trainingConfig !== undefined ? { trainingConfig: json.trainingConfig } : {}),
        ...(json.userDefinedMetadata !== undefined ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
      };
    },
  };
}

/** Saves a model in the TensorFlow.js layers format (`model.json`, `weights.bin`) into an existing folder. */
export async function saveMlp(tf: Tf, spec: MlpSpec, weights: MlpWeights, dir: string): Promise<void> {
  const model = toLayersModel(tf, spec, weights);
  try {
    await model.save(folderModelHandler(dir));
  } finally {
    model.dispose();
  }
}

/** Loads a model saved by `saveMlp` (or by tfjs-node into a folder). */
export function loadLayersModelFromFolder(tf: Tf, dir: string): Promise<LayersModel> {
  return tf.loadLayersModel(folderModelHandler(dir));
}

/**
 * Class probabilities, row-major `[n, classes]`, of a layers model on flat
 * rows `x` (`[n, width]`), reshaped to the model's input shape.
 */
export function predictLayersModel(tf: Tf, model: LayersModel, x: Float32Array, n: number): Float32Array {
  const inputShape = (model.inputs[0]?.shape ?? []).slice(1).map((d) => d ?? 0);
  const width = inputShape.reduce((a, b) => a * b, 1);
  const classes = (model.outputs[0]?.shape ?? []).at(-1) ?? 0;
  if (x.length !== n * width) throw new RangeError(`x has ${x.length} values, expected ${n} × ${width} for input shape [${inputShape.join(', ')}]`);
  const probs = new Float32Array(n * classes);
  for (let start = 0; start < n; start += PREDICT_CHUNK) {
    const rows = Math.min(PREDICT_CHUNK, n - start);
    // predict's default batch of 32 rows makes ~300 tiny products per chunk, 25 times slower than one.
    const out = tf.tidy(() => model.predict(tf.tensor(x.subarray(start * width, (start + rows) * width), [rows, ...inputShape]), { batchSize: rows }) as Tensor);
    probs.set(out.dataSync() as Float32Array, start * classes);
    out.dispose();
  }
  return probs;
}
