/**
 * The training loop: epochs of seeded shuffled mini-batches, the batch shared
 * with gradient threads when asked, validation and progress after each epoch.
 */
import type { Scalar, Tensor } from '@tensorflow/tfjs';
import { Random } from '../../util/random.js';
import type { Tf } from '../tf.js';
import { classificationMetrics } from './metrics.js';
import { adam, batchGradients, checkWeights, fromTensors, initMlpWeights, KERAS_EPSILON, predictWith, sgd, toTensors, type MlpWeights } from './model.js';
import { openGradientPool, paramLayout, partBounds, type GradientPool, type PartResult } from './parallel.js';
import { checkData, isPositiveInteger, resolveMlp, type LabelledData, type Loss, type MlpSpec, type OptimizerName } from './spec.js';

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
          answers = await Promise.all(pending.map((part) => part ?? Promise.resolve(null)));
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
