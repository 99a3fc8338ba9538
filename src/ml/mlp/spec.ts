/**
 * The model as a pipeline writes it, checked and resolved into layer sizes,
 * and the checks of the data it is trained and evaluated on.
 */

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

/** Labelled examples: `x` is row-major `[n, inputs]` (features in [0, 1]), `y` holds class indices. */
export interface LabelledData {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

/** Whether a value is an integer above zero. */
export function isPositiveInteger(value: unknown): value is number {
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

/** Throws a RangeError naming the `name` set when `data` does not fit the model. */
export function checkData(net: ResolvedMlp, data: LabelledData, name: string): void {
  if (!Number.isInteger(data.n) || data.n < 1) throw new RangeError(`${name} set has no examples`);
  if (data.x.length !== data.n * net.inputs) throw new RangeError(`${name} set: x has ${data.x.length} values, expected ${data.n} × ${net.inputs}`);
  if (data.y.length !== data.n) throw new RangeError(`${name} set: y has ${data.y.length} labels, expected ${data.n}`);
  for (const label of data.y) {
    if (label < 0 || label >= net.classes) throw new RangeError(`${name} set has label ${label}, outside the model's ${net.classes} classes`);
  }
}
