/** How well a model classifies a labelled set. */
import type { Tf } from '../tf.js';
import { checkWeights, KERAS_EPSILON, predictWith, toTensors, type MlpWeights } from './model.js';
import { checkData, resolveMlp, type LabelledData, type MlpSpec } from './spec.js';

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
