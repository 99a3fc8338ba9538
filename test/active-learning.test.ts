import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { loadLayersModelFromFolder, predictLayersModel } from '../src/ml/mlp/index.js';
import { selectQueries } from '../src/ml/query.js';
import { batchOf, stage as activeLearning, type ActiveLearningParams } from '../src/stages/active-learning.js';
import { readArray } from '../src/stages/inputs.js';
import type { ArtifactReader } from '../src/stages/types.js';
import { blobs, fakeSeeds, fakeSplit, type SetData } from './support/fake-stages.js';
import { runStage, tempDir } from './support/stage-harness.js';

let tf: Tf;
before(async () => {
  ({ tf } = await loadTf());
});

const WIDTH = 16;
const CLASSES = 3;

const PARAMS: ActiveLearningParams = {
  strategy: 'margin',
  batch: [5, 10],
  neighbors: 20,
  model: { input_shape: [WIDTH], layers: [{ type: 'dense', units: 8, activation: 'relu' }, { type: 'dense', units: CLASSES, activation: 'softmax' }] },
  optimizer: { name: 'adam', learning_rate: 0.01 },
  loss: 'sparse_categorical_crossentropy',
  epochs: 10,
  // Small sets make one step per epoch: fit them.
  min_steps: 200,
  batch_size: 64,
  seed: 3,
  shuffle: true,
  threads: 1,
};

/** A split of blobs (`train` training images) and a seed set of one image per class. */
async function world(train = 120): Promise<{ root: string; split: ArtifactReader; seeds: ArtifactReader; truth: Int32Array }> {
  const all = blobs(train + 60, WIDTH, CLASSES, 11, 70);
  const part = (from: number, to: number): SetData => ({ x: all.x.slice(from * WIDTH, to * WIDTH), y: all.y.slice(from, to) });
  const root = await tempDir();
  const split = (await runStage(fakeSplit(WIDTH, CLASSES, { train: part(0, train), val: part(train, train + 30), test: part(train + 30, train + 60) }), {}, {}, { root })).artifact;
  const indices = Int32Array.from([0, 1, 2]);
  const seeds = (await runStage(fakeSeeds({ indices, y: indices.map((i) => all.y[i] ?? -1) }), {}, {}, { root })).artifact;
  return { root, split, seeds, truth: all.y.slice(0, train) };
}

async function round(w: { root: string; split: ArtifactReader; seeds: ArtifactReader }, params: ActiveLearningParams, previous?: ArtifactReader): Promise<ArtifactReader> {
  return (await runStage(activeLearning, params, { split: [w.split], seeds: [w.seeds] }, { root: w.root, ...(previous !== undefined ? { previous } : {}) })).artifact;
}

async function labelled(artifact: ArtifactReader): Promise<{ indices: number[]; y: number[] }> {
  return {
    indices: [...(await readArray(artifact, 'indices.npy', 'int32', ['*'])).data],
    y: [...(await readArray(artifact, 'y.npy', 'int32', ['*'])).data],
  };
}

describe('active-learning stage', () => {
  test('round 1 trains on the seed set; each later round queries its batch with the previous round\'s model, asks the oracle and counts every label', async () => {
    const w = await world();
    const first = await round(w, PARAMS);
    const firstAccuracy = first.summary?.metrics['accuracy'];
    assert.deepEqual(first.summary?.metrics, { ...first.summary?.metrics, round: 1, samples: 3, trueLabelsUsed: 3, labelAccuracy: 1, queried: 0, pseudo_labels: 0, pseudo_accuracy: null });
    assert.deepEqual(await labelled(first), { indices: [0, 1, 2], y: [...w.truth.slice(0, 3)] });
    // Its test scores as evaluate writes them, so the report can draw its confusion matrix.
    const scored = await first.readJson<{ accuracy: number; confusion: number[][] }>('metrics.json');
    assert.equal(scored.confusion.flat().reduce((a, b) => a + b, 0), 30);
    assert.equal(scored.accuracy, firstAccuracy);

    // What round 2 should ask for: the 5 smallest margins of round 1's model among the unlabelled images.
    const model = await loadLayersModelFromFolder(tf, first.dir);
    const images = await w.split.readPixels('x_train.npy');
    const probabilities = predictLayersModel(tf, model, images.pixels, w.truth.length);
    model.dispose();
    const mask = new Uint8Array(w.truth.length);
    mask.set([1, 1, 1]);
    const expected = [...selectQueries({ strategy: 'margin', batch: 5, labelled: mask, probabilities, classes: CLASSES })];

    const second = await round(w, PARAMS, first);
    const two = await labelled(second);
    assert.deepEqual(two.indices, [0, 1, 2, ...expected]);
    assert.deepEqual(two.y, two.indices.map((i) => w.truth[i]), 'the oracle gives the true labels');
    assert.equal(second.summary?.metrics['round'], 2);
    assert.equal(second.summary?.metrics['queried'], 5);
    assert.equal(second.summary?.metrics['trueLabelsUsed'], 8);

    const third = await round(w, PARAMS, second);
    const three = await labelled(third);
    assert.equal(third.summary?.metrics['queried'], 10, 'round 3 takes the second batch');
    assert.equal(third.summary?.metrics['trueLabelsUsed'], 18);
    assert.equal(new Set(three.indices).size, 18, 'never the same image twice');
    assert.deepEqual(three.indices.slice(0, 8), two.indices);
    const accuracy = third.summary?.metrics['accuracy'] ?? NaN;
    assert.ok(accuracy > 0.8, `test accuracy ${accuracy}`);
  });

  test('self-training trains on the confident predictions too but counts only the oracle\'s labels', async () => {
    const w = await world();
    const params: ActiveLearningParams = { ...PARAMS, self_training: { threshold: 0.5 } };
    const first = await round(w, params);
    const second = await round(w, params, first);
    const metrics = second.summary?.metrics ?? {};
    assert.equal(metrics['trueLabelsUsed'], 8);
    assert.ok((metrics['pseudo_labels'] ?? 0) > 0, 'some predictions pass a threshold of 0.5');
    assert.ok((metrics['pseudo_labels'] ?? 0) <= 120 - 8);
    assert.equal((await labelled(second)).indices.length, 8, 'the labelled set holds only the oracle\'s labels');
    assert.equal(typeof metrics['pseudo_accuracy'], 'number');
  });

  test('a batch larger than what is left labels the rest, and counts what it took', async () => {
    const w = await world(20);
    const first = await round(w, { ...PARAMS, strategy: 'random', batch: 100 });
    const second = await round(w, { ...PARAMS, strategy: 'random', batch: 100 }, first);
    assert.equal(second.summary?.metrics['queried'], 17);
    assert.equal(second.summary?.metrics['trueLabelsUsed'], 20);
    const third = await round(w, { ...PARAMS, strategy: 'random', batch: 100 }, second);
    assert.equal(third.summary?.metrics['queried'], 0);
    assert.equal(third.summary?.metrics['trueLabelsUsed'], 20);
  });

  test('a seed set with propagated labels is refused: they would pass for the oracle\'s', async () => {
    const w = await world();
    const indices = Int32Array.from([0, 1, 2, 3, 4, 5]);
    const propagated = (await runStage(fakeSeeds({ indices, y: indices.map((i) => w.truth[i] ?? -1) }, 2), {}, {}, { root: w.root })).artifact;
    await assert.rejects(round({ ...w, seeds: propagated }, PARAMS), /labels 6 images from 2 true labels/);
  });

  test('a list of batches gives round r its (r - 1)th entry, the last repeating', () => {
    assert.deepEqual([2, 3, 4, 5].map((r) => batchOf([10, 30, 50], r)), [10, 30, 50, 50]);
    assert.equal(batchOf(7, 9), 7);
  });
});
