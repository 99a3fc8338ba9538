import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compileSchema } from '../src/config/validate-schema.js';
import { loadTf } from '../src/ml/backend.js';
import type { Tf } from '../src/ml/backend.js';
import {
  classificationMetrics, folderModelHandler, initMlpWeights, MlpSpecError, predictMlp, resolveMlp, saveMlp, toLayersModel, trainMlp,
} from '../src/ml/mlp/index.js';
import type { EpochMetrics, LabelledData, MlpSpec, MlpWeights, TrainOptions } from '../src/ml/mlp/index.js';
import { stage as evaluate } from '../src/stages/evaluate.js';
import type { EvaluationFile } from '../src/stages/evaluate.js';
import { stage as train } from '../src/stages/train.js';
import type { TrainParams } from '../src/stages/train.js';
import { StageUserError } from '../src/stages/types.js';
import type { ArtifactReader, StageType } from '../src/stages/types.js';
import { blobs, fakeSeeds, fakeSplit, type SetData } from './support/fake-stages.js';
import { runStage, tempDir } from './support/stage-harness.js';

let tf: Tf;
before(async () => {
  ({ tf } = await loadTf());
});

/** Features in [0, 1] from blobs, as the training loop takes them. */
function floatBlobs(n: number, width: number, classes: number, seed: number): LabelledData {
  const { x, y } = blobs(n, width, classes, seed);
  return { x: Float32Array.from(x, (v) => v / 255), y, n };
}

function maxDifference(a: MlpWeights, b: MlpWeights): number {
  let max = 0;
  a.forEach((layer, i) => {
    const other = b[i];
    assert.ok(other !== undefined);
    layer.kernel.forEach((v, j) => (max = Math.max(max, Math.abs(v - (other.kernel[j] ?? NaN)))));
    layer.bias.forEach((v, j) => (max = Math.max(max, Math.abs(v - (other.bias[j] ?? NaN)))));
  });
  return max;
}

/** Every activation, so each hand-written gradient is checked against automatic differentiation. */
const SMALL: MlpSpec = {
  input_shape: [3, 4],
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 16, activation: 'relu' },
    { type: 'dense', units: 8, activation: 'tanh' },
    { type: 'dense', units: 6, activation: 'sigmoid' },
    { type: 'dense', units: 5 },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};

const TRAIN_DEFAULTS: Omit<TrainParams, 'model'> = {
  optimizer: { name: 'adam', learning_rate: 0.01 },
  loss: 'sparse_categorical_crossentropy',
  epochs: 12,
  batch_size: 50,
  seed: 0,
  shuffle: true,
  threads: 1,
};

describe('MLP training loop', () => {
  test('the fast loop matches model.fit on small data within float noise', async () => {
    const data = floatBlobs(96, 12, 4, 1);
    const initial = initMlpWeights(SMALL, 3);
    // A tiny epsilon makes Keras's and TensorFlow.js's placements of it agree, so only the arithmetic differs.
    const cases = [
      { optimizer: 'adam', learningRate: 0.01, slow: () => tf.train.adam(0.01, 0.9, 0.999, 1e-10) },
      { optimizer: 'sgd', learningRate: 0.1, slow: () => tf.train.sgd(0.1) },
    ] as const;
    for (const c of cases) {
      const fast = await trainMlp(tf, SMALL, data, undefined, {
        epochs: 3, batchSize: 32, learningRate: c.learningRate, optimizer: c.optimizer, seed: 0, shuffle: false, initialWeights: initial, adamEpsilon: 1e-10,
      });
      const model = toLayersModel(tf, SMALL, initial);
      const optimizer = c.slow();
      model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
      const xs = tf.tensor3d(data.x, [data.n, 3, 4]);
      const ys = tf.tensor2d(Float32Array.from(data.y), [data.n, 1]);
      const slow = await model.fit(xs, ys, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
      const slowWeights = model.getWeights().map((t) => t.dataSync() as Float32Array);
      tf.dispose([xs, ys]);
      model.dispose();
      optimizer.dispose();
      fast.history.forEach((epoch, i) => {
        assert.ok(Math.abs(epoch.loss - Number(slow.history['loss']?.[i])) < 1e-5, `${c.optimizer} epoch ${i + 1} loss ${epoch.loss} vs ${String(slow.history['loss']?.[i])}`);
        assert.ok(Math.abs(epoch.accuracy - Number(slow.history['acc']?.[i])) < 1e-6, `${c.optimizer} epoch ${i + 1} accuracy`);
      });
      const asWeights: MlpWeights = fast.weights.map((_, i) => ({ kernel: slowWeights[2 * i] as Float32Array, bias: slowWeights[2 * i + 1] as Float32Array }));
      const diff = maxDifference(fast.weights, asWeights);
      assert.ok(diff < 1e-4, `${c.optimizer}: weights differ by ${diff}`);
    }
  });

  test("adam's first step adds epsilon to sqrt(v) before bias correction, as Keras does", async () => {
    const spec: MlpSpec = { input_shape: [5], layers: [{ type: 'dense', units: 3, activation: 'softmax' }] };
    const data = floatBlobs(20, 5, 3, 2);
    const initial = initMlpWeights(spec, 4);
    const options: TrainOptions = { epochs: 1, batchSize: 20, learningRate: 1, optimizer: 'sgd', seed: 0, shuffle: false, initialWeights: initial };
    // One full-batch SGD step with rate 1 moves each weight by minus its gradient.
    const sgdStep = await trainMlp(tf, spec, data, undefined, options);
    const lr = 0.01;
    const adamStep = await trainMlp(tf, spec, data, undefined, { ...options, optimizer: 'adam', learningRate: lr });
    const w0 = initial[0]?.kernel ?? new Float32Array();
    const grad = Array.from(w0, (w, i) => w - (sgdStep.weights[0]?.kernel[i] ?? NaN));
    const alpha = (lr * Math.sqrt(1 - 0.999)) / (1 - 0.9);
    grad.forEach((g, i) => {
      const expected = (w0[i] ?? NaN) - (alpha * 0.1 * g) / (Math.sqrt(0.001) * Math.abs(g) + 1e-7);
      assert.ok(Math.abs((adamStep.weights[0]?.kernel[i] ?? NaN) - expected) < 1e-6, `weight ${i}`);
    });
  });

  test('training twice with the same seed gives identical weights, another seed different ones', async () => {
    const data = floatBlobs(70, 12, 4, 5);
    const options: TrainOptions = { epochs: 2, batchSize: 16, learningRate: 0.01, optimizer: 'adam', seed: 7, shuffle: true };
    const tensors = tf.memory().numTensors;
    const a = await trainMlp(tf, SMALL, data, undefined, options);
    const b = await trainMlp(tf, SMALL, data, undefined, options);
    const c = await trainMlp(tf, SMALL, data, undefined, { ...options, seed: 8 });
    assert.equal(maxDifference(a.weights, b.weights), 0);
    assert.deepEqual(a.history.map((e) => e.loss), b.history.map((e) => e.loss));
    assert.ok(maxDifference(a.weights, c.weights) > 0);
    assert.equal(tf.memory().numTensors, tensors, 'training leaks no tensors');
  });

  test('a saved model reloads through the folder handler and predicts the same', async () => {
    const dir = await tempDir();
    const weights = initMlpWeights(SMALL, 11);
    await saveMlp(tf, SMALL, weights, dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as { format: string; weightsManifest: { paths: string[] }[] };
    assert.equal(json.format, 'layers-model');
    assert.deepEqual(json.weightsManifest.map((g) => g.paths), [['weights.bin']]);
    const model = await tf.loadLayersModel(folderModelHandler(dir));
    const data = floatBlobs(9, 12, 4, 6);
    const reloaded = tf.tidy(() => (model.predict(tf.tensor3d(data.x, [9, 3, 4])) as ReturnType<Tf['tensor']>).dataSync());
    const direct = predictMlp(tf, SMALL, weights, data.x, 9);
    model.dispose();
    assert.equal(reloaded.length, direct.length);
    direct.forEach((p, i) => assert.ok(Math.abs(p - (reloaded[i] ?? NaN)) < 1e-6, `probability ${i}`));
  });

  test('an aborted signal stops training between batches', async () => {
    const controller = new AbortController();
    controller.abort(new Error('interrupted'));
    const tensors = tf.memory().numTensors;
    await assert.rejects(
      trainMlp(tf, SMALL, floatBlobs(8, 12, 4, 1), undefined, { epochs: 1, batchSize: 4, learningRate: 0.01, optimizer: 'adam', seed: 0, shuffle: true, signal: controller.signal }),
      /interrupted/,
    );
    assert.equal(tf.memory().numTensors, tensors, 'an interrupted run frees its tensors');
  });

  test('two threads match one within float noise, reproducibly and without leaking tensors', async () => {
    // 90 rows in batches of 16 end with a short batch, which is split differently.
    const data = floatBlobs(90, 12, 4, 5);
    const val = floatBlobs(20, 12, 4, 6);
    const options: TrainOptions = { epochs: 3, batchSize: 16, learningRate: 0.01, optimizer: 'adam', seed: 7, shuffle: true };
    const tensors = tf.memory().numTensors;
    const one = await trainMlp(tf, SMALL, data, val, options);
    const two = await trainMlp(tf, SMALL, data, val, { ...options, threads: 2 });
    const again = await trainMlp(tf, SMALL, data, val, { ...options, threads: 2 });
    assert.equal(tf.memory().numTensors, tensors, 'parallel training leaks no tensors');
    const diff = maxDifference(one.weights, two.weights);
    assert.ok(diff < 1e-5, `weights differ by ${diff}`);
    one.history.forEach((epoch, i) => {
      const other = two.history[i] as EpochMetrics;
      assert.ok(Math.abs(epoch.loss - other.loss) < 1e-6, `epoch ${i + 1} loss ${epoch.loss} vs ${other.loss}`);
      assert.ok(Math.abs(epoch.accuracy - other.accuracy) <= 1 / data.n, `epoch ${i + 1} accuracy`);
      assert.ok(Math.abs((epoch.val_loss ?? NaN) - (other.val_loss ?? NaN)) < 1e-6, `epoch ${i + 1} validation loss`);
    });
    assert.equal(maxDifference(two.weights, again.weights), 0);
    assert.deepEqual(two.history.map((e) => [e.loss, e.accuracy]), again.history.map((e) => [e.loss, e.accuracy]));
  });

  test('more threads than rows per batch leave the extra parts empty', async () => {
    const data = floatBlobs(7, 12, 4, 8);
    const options: TrainOptions = { epochs: 2, batchSize: 3, learningRate: 0.01, optimizer: 'sgd', seed: 1, shuffle: true };
    const one = await trainMlp(tf, SMALL, data, undefined, options);
    const many = await trainMlp(tf, SMALL, data, undefined, { ...options, threads: 5 });
    const diff = maxDifference(one.weights, many.weights);
    assert.ok(diff < 1e-6, `weights differ by ${diff}`);
    await assert.rejects(trainMlp(tf, SMALL, data, undefined, { ...options, threads: 0 }), /threads must be a positive integer/);
  });

  test('an abort during parallel training stops it and frees everything', async () => {
    const controller = new AbortController();
    const tensors = tf.memory().numTensors;
    let epochs = 0;
    await assert.rejects(
      trainMlp(tf, SMALL, floatBlobs(60, 12, 4, 2), undefined, {
        epochs: 5, batchSize: 8, learningRate: 0.01, optimizer: 'adam', seed: 0, shuffle: true, threads: 2,
        onEpoch: () => {
          epochs++;
          controller.abort(new Error('interrupted'));
        },
        signal: controller.signal,
      }),
      /interrupted/,
    );
    assert.equal(epochs, 1, 'training stops at the next batch');
    assert.equal(tf.memory().numTensors, tensors, 'an interrupted run frees its tensors');
  });

  const dense = (units: number, activation?: 'relu' | 'softmax' | 'linear') => ({ type: 'dense' as const, units, ...(activation ? { activation } : {}) });
  const badSpecs: { why: string; spec: MlpSpec; message: RegExp }[] = [
    { why: 'no softmax at the end', spec: { input_shape: [4], layers: [dense(3, 'relu')] }, message: /last layer that is dense with activation "softmax"/ },
    { why: 'a flatten at the end', spec: { input_shape: [4], layers: [dense(3, 'softmax'), { type: 'flatten' }] }, message: /last layer that is dense/ },
    { why: 'a softmax inside', spec: { input_shape: [4], layers: [dense(3, 'softmax'), dense(3, 'softmax')] }, message: /only as the activation of the last layer/ },
    { why: 'images without flatten', spec: { input_shape: [2, 2], layers: [dense(3, 'softmax')] }, message: /add a flatten layer/ },
    { why: 'zero units', spec: { input_shape: [4], layers: [dense(0, 'softmax')] }, message: /positive integer/ },
    { why: 'an empty input shape', spec: { input_shape: [], layers: [dense(3, 'softmax')] }, message: /input_shape/ },
  ];
  for (const row of badSpecs) {
    test(`a model with ${row.why} is rejected with a clear message`, () => {
      assert.throws(() => resolveMlp(row.spec), (error: unknown) => error instanceof MlpSpecError && row.message.test(error.message));
    });
  }
});

describe('train and evaluate stages', () => {
  test('evaluate computes the confusion matrix and per-class accuracy of a hand-made case', async () => {
    // A one-layer model that predicts the brightest pixel: logits are 5 × the pixel values.
    const spec: MlpSpec = { input_shape: [3], layers: [{ type: 'dense', units: 3, activation: 'softmax' }] };
    const weights: MlpWeights = [{ kernel: Float32Array.from([5, 0, 0, 0, 5, 0, 0, 0, 5]), bias: new Float32Array(3) }];
    const fakeTrain: StageType<Record<string, never>> = {
      name: 'train',
      version: 1,
      schema: {},
      async run(_inputs, _params, ctx) {
        await saveMlp(tf, spec, weights, ctx.outDir);
        return { metrics: { samples: 42 }, timings: {} };
      },
    };
    const one = (c: number): number[] => [0, 1, 2].map((i) => (i === c ? 255 : 0));
    const predicted = [0, 1, 1, 1, 2, 0, 2];
    const truth = Int32Array.from([0, 0, 1, 1, 2, 2, 2]);
    const test = { x: Uint8Array.from(predicted.flatMap(one)), y: truth };
    const root = await tempDir();
    const splitRun = await runStage(fakeSplit(3, 3, { train: test, val: test, test }, ['a', 'b', 'c']), {}, {}, { root });
    const trainRun = await runStage(fakeTrain, {}, {}, { root });
    const run = await runStage(evaluate, { split: 'test' }, { train: [trainRun.artifact], split: [splitRun.artifact] }, { root });
    const file = await run.artifact.readJson<EvaluationFile>('metrics.json');
    assert.deepEqual(file.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 2]]);
    assert.deepEqual(file.perClass.map((p) => (p === null ? null : Number(p.toFixed(6)))), [0.5, 1, Number((2 / 3).toFixed(6))]);
    assert.ok(Math.abs(file.accuracy - 5 / 7) < 1e-12);
    const right = -Math.log(Math.exp(5) / (Math.exp(5) + 2));
    const wrong = -Math.log(1 / (Math.exp(5) + 2));
    assert.ok(Math.abs(file.loss - (5 * right + 2 * wrong) / 7) < 1e-5, `loss ${file.loss}`);
    assert.deepEqual(file.classNames, ['a', 'b', 'c']);
    assert.deepEqual(run.artifact.summary, { metrics: { samples: 7, accuracy: file.accuracy, loss: file.loss, trainSamples: 42 }, timings: {}, details: { split: 'test' } });
  });

  test('classification metrics give null accuracy to a class absent from the set', () => {
    const metrics = classificationMetrics(Float32Array.from([0.9, 0.1, 0.2, 0.8]), Int32Array.from([0, 0]), 2);
    assert.deepEqual(metrics.confusion, [[1, 1], [0, 0]]);
    assert.deepEqual(metrics.perClass, [0.5, null]);
  });

  test('a tiny blob problem reaches high accuracy through train and evaluate', async () => {
    const width = 64;
    const all = blobs(900, width, 10, 21);
    const part = (from: number, to: number): SetData => ({ x: all.x.slice(from * width, to * width), y: all.y.slice(from, to) });
    const root = await tempDir();
    const splitRun = await runStage(fakeSplit(width, 10, { train: part(0, 600), val: part(600, 700), test: part(700, 900) }), {}, {}, { root });
    // Half of the training rows carry labels, as a seed strategy would choose them.
    const indices = Int32Array.from({ length: 300 }, (_, i) => 599 - i);
    const seedsRun = await runStage(fakeSeeds({ indices, y: Int32Array.from(indices, (i) => all.y[i] ?? -1) }), {}, {}, { root });
    const params: TrainParams = { ...TRAIN_DEFAULTS, model: { input_shape: [8, 8], layers: [{ type: 'flatten' }, { type: 'dense', units: 32, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }] } };
    const inputs = { split: [splitRun.artifact], seeds: [seedsRun.artifact] };
    const trainRun = await runStage(train, params, inputs, { root });

    assert.equal(trainRun.progress.length, params.epochs);
    assert.deepEqual(trainRun.progress.at(-1)?.step, params.epochs);
    assert.ok(trainRun.progress.every((p) => p.unit === 'epoch' && p.metrics?.['val_accuracy'] !== undefined));
    const history = await trainRun.artifact.readJson<EpochMetrics[]>('history.json');
    assert.equal(history.length, params.epochs);
    const summary = trainRun.artifact.summary;
    assert.equal(summary?.metrics['samples'], 300);
    assert.equal(String(summary?.details?.['backend']).length > 0, true);
    assert.equal(typeof summary?.timings['train'], 'number');
    const valAccuracy = summary?.metrics['final.val_accuracy'] ?? NaN;
    assert.ok(valAccuracy > 0.95, `validation accuracy ${valAccuracy}`);

    const evalRun = await runStage(evaluate, { split: 'test' }, { train: [trainRun.artifact], split: [splitRun.artifact] }, { root });
    const accuracy = evalRun.artifact.summary?.metrics['accuracy'] ?? NaN;
    assert.ok(accuracy > 0.95, `test accuracy ${accuracy}`);
  });

  test('train accepts seed labels given as feature rows', async () => {
    const width = 16;
    const data = blobs(120, width, 3, 8);
    const set = { x: data.x, y: data.y };
    const root = await tempDir();
    const splitRun = await runStage(fakeSplit(width, 3, { train: set, val: set, test: set }), {}, {}, { root });
    const seedsRun = await runStage(fakeSeeds({ x: Float32Array.from(data.x, (v) => v / 255), width, y: data.y }), {}, {}, { root });
    const params: TrainParams = { ...TRAIN_DEFAULTS, epochs: 8, batch_size: 20, model: { input_shape: [width], layers: [{ type: 'dense', units: 3, activation: 'softmax' }] } };
    const run = await runStage(train, params, { split: [splitRun.artifact], seeds: [seedsRun.artifact] }, { root });
    const metrics = run.artifact.summary?.metrics ?? {};
    assert.equal(metrics['samples'], 120);
    const accuracy = metrics['final.accuracy'] ?? NaN;
    assert.ok(accuracy > 0.9, `training accuracy ${accuracy}`);
  });

  test("train's schema defaults are the report's configuration", () => {
    const params: Record<string, unknown> = {};
    assert.ok(compileSchema(train.schema)(params));
    assert.deepEqual(params, {
      model: {
        input_shape: [28, 28],
        layers: [{ type: 'flatten' }, { type: 'dense', units: 300, activation: 'relu' }, { type: 'dense', units: 100, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
      },
      optimizer: { name: 'adam', learning_rate: 0.001 },
      loss: 'sparse_categorical_crossentropy',
      epochs: 20,
      batch_size: 2000,
      seed: 0,
      shuffle: true,
      threads: 1,
    });
    const dense = { model: { input_shape: [4], layers: [{ type: 'dense', activation: 'softmax' }] } };
    assert.equal(compileSchema(train.schema)(dense), false, 'a dense layer needs units');
  });

  test('train rejects a model whose last layer does not have one unit per class', async () => {
    const data = blobs(12, 4, 3, 1);
    const set = { x: data.x, y: data.y };
    const root = await tempDir();
    const inputs: Record<string, ArtifactReader[]> = {
      split: [(await runStage(fakeSplit(4, 3, { train: set, val: set, test: set }), {}, {}, { root })).artifact],
      seeds: [(await runStage(fakeSeeds({ indices: Int32Array.from([0, 1, 2]), y: Int32Array.from([0, 1, 2]) }), {}, {}, { root })).artifact],
    };
    const params: TrainParams = { ...TRAIN_DEFAULTS, model: { input_shape: [4], layers: [{ type: 'dense', units: 5, activation: 'softmax' }] } };
    await assert.rejects(runStage(train, params, inputs, { root }), (error: unknown) => error instanceof StageUserError && /5 units but the data set has 3 classes/.test(error.message));
  });
});
