/**
 * The model's numerics: parameters and their seeded initialisation, the
 * forward pass, the hand-written backward pass and the optimizers.
 */
import type { Scalar, Tensor, Tensor1D, Tensor2D } from '@tensorflow/tfjs';
import { Random } from '../../util/random.js';
import { productsNative } from '../native-matmul.js';
import type { Tf } from '../tf.js';
import { resolveMlp, type Activation, type DenseShape, type MlpSpec, type ResolvedMlp } from './spec.js';

/** The parameters of one dense layer. */
export interface DenseWeights {
  /** Row-major `[inputs, units]`, the layout Keras and TensorFlow.js use. */
  readonly kernel: Float32Array;
  /** `[units]`. */
  readonly bias: Float32Array;
}

/** The parameters of a model: one entry per dense layer, first to last. */
export type MlpWeights = readonly DenseWeights[];

/** Keras's fuzz factor: the Adam epsilon and the probability clip of the cross-entropy. */
export const KERAS_EPSILON = 1e-7;
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
/** Rows per forward pass when predicting: bounds memory, not results. */
export const PREDICT_CHUNK = 4096;

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

/** Throws a RangeError when `weights` do not have the model's layer shapes. */
export function checkWeights(net: ResolvedMlp, weights: MlpWeights): void {
  if (weights.length !== net.dense.length) throw new RangeError(`model has ${net.dense.length} dense layers but ${weights.length} weight sets were given`);
  net.dense.forEach((d, i) => {
    const w = weights[i];
    if (w === undefined || w.kernel.length !== d.inputs * d.units || w.bias.length !== d.units) {
      throw new RangeError(`weights of dense layer ${i + 1} do not match its shape [${d.inputs}, ${d.units}]`);
    }
  });
}

/** Parameters as tensors: kernel, bias, kernel, bias... */
export function toTensors(tf: Tf, net: ResolvedMlp, weights: MlpWeights): Tensor[] {
  return net.dense.flatMap((d, i) => {
    const w = weights[i] as DenseWeights;
    return [tf.tensor2d(w.kernel, [d.inputs, d.units]), tf.tensor1d(w.bias)];
  });
}

/** The weights held by parameter tensors (kernel, bias, kernel, bias...). */
export function fromTensors(params: readonly Tensor[]): MlpWeights {
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
export function forward(tf: Tf, net: ResolvedMlp, params: readonly Tensor[], x: Tensor2D): { hidden: Tensor2D[]; logits: Tensor2D } {
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

/** Class probabilities, row-major `[n, classes]`, of the model with parameter tensors `params`. */
export function predictWith(tf: Tf, net: ResolvedMlp, params: readonly Tensor[], x: Float32Array, n: number): Float32Array {
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
export interface Optimizer {
  /** New parameters (inside the caller's tidy); replaces the optimizer's own state. */
  step(params: readonly Tensor[], grads: readonly Tensor[]): Tensor[];
  dispose(): void;
}

/** Plain gradient descent: each parameter moves by `learningRate` times its gradient. */
export function sgd(tf: Tf, learningRate: number): Optimizer {
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
export function adam(tf: Tf, learningRate: number, epsilon: number, params: readonly Tensor[]): Optimizer {
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
