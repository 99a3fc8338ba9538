/**
 * The MLP as the stages, the bench and the tests use it: the model spec, training,
 * evaluation and the TensorFlow.js layers format. The numerics and the gradient
 * threads stay behind this entry.
 */
export { ACTIVATIONS, LOSSES, OPTIMIZERS, MlpSpecError, resolveMlp } from './spec.js';
export type {
  Activation, DenseLayerSpec, DenseShape, FlattenLayerSpec, LabelledData, LayerSpec, Loss, MlpSpec, OptimizerName, ResolvedMlp,
} from './spec.js';
export { initMlpWeights } from './model.js';
export type { DenseWeights, MlpWeights } from './model.js';
export { trainMlp } from './training.js';
export type { EpochMetrics, TrainOptions, TrainResult } from './training.js';
export { classificationMetrics, evaluateMlp, predictMlp } from './metrics.js';
export type { ClassificationMetrics } from './metrics.js';
export { folderModelHandler, loadLayersModelFromFolder, MODEL_FILE, predictLayersModel, saveMlp, toLayersModel, WEIGHTS_FILE } from './layers-format.js';
