import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { kmeans } from '../src/ml/kmeans/kmeans.js';
import { knnGraph } from '../src/ml/knn.js';
import { fitPca, projectPca } from '../src/ml/pca.js';
import { conjugateGradient, propagate, weightedGraph } from '../src/ml/propagate.js';
import { representatives, typicalPicks } from '../src/stages/seed-labels.js';
import { epochsFor } from '../src/stages/train.js';
import { Random } from '../src/util/random.js';
import { stage as features } from '../src/stages/features.js';
import type { StageType } from '../src/stages/types.js';
import { ndarray } from '../src/util/npy.js';
import { executed, Rig } from './support/rig.js';
import { runStage } from './support/stage-harness.js';
import { writeTinyIdx } from './support/tiny-data.js';

let tf: Tf;
before(async () => {
  ({ tf } = await loadTf());
});

/** Two interleaved half circles with noise: the classic case where clusters by distance cut across the classes. */
function twoMoons(perMoon: number, noise: number, seed: number): { points: Float32Array; truth: Int32Array; n: number } {
  const random = new Random(seed);
  const n = 2 * perMoon;
  const points = new Float32Array(n * 2);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const moon = i % 2;
    const t = Math.PI * random.next();
    const [x, y] = moon === 0 ? [Math.cos(t), Math.sin(t)] : [1 - Math.cos(t), 0.5 - Math.sin(t)];
    points[2 * i] = x + noise * random.normal();
    points[2 * i + 1] = y + noise * random.normal();
    truth[i] = moon;
  }
  return { points, truth, n };
}

function accuracy(labels: ArrayLike<number>, truth: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (labels[i] === truth[i]) right++;
  return right / truth.length;
}

describe('PCA', () => {
  test('components and variances match a reference SVD of the centred data, up to sign', () => {
    const random = new Random(11);
    const n = 300;
    const d = 12;
    // Correlated features: a few latent factors mixed into d columns, plus noise.
    const mix = Array.from({ length: 3 }, () => Array.from({ length: d }, () => random.normal()));
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const z = [3 * random.normal(), 2 * random.normal(), random.normal()];
      for (let f = 0; f < d; f++) x[i * d + f] = 5 + z.reduce((s, v, m) => s + v * ((mix[m] as number[])[f] as number), 0) + 0.1 * random.normal();
    }
    const model = fitPca(tf, x, n, d, 4, 64);
    const rows = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * d, i * d + d)));
    const centred = new Matrix(rows);
    const means = centred.mean('column');
    for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) centred.set(i, f, centred.get(i, f) - (means[f] as number));
    const svd = new SingularValueDecomposition(centred, { autoTranspose: true });
    for (let m = 0; m < 4; m++) {
      const expectedVariance = (svd.diagonal[m] as number) ** 2 / (n - 1);
      assert.ok(Math.abs((model.variances[m] as number) - expectedVariance) < 1e-3 * expectedVariance, `variance ${m}: ${model.variances[m]} vs ${expectedVariance}`);
      const reference = svd.rightSingularVectors.getColumn(m);
      const ours = Array.from(model.components.subarray(m * d, m * d + d));
      const cosine = ours.reduce((s, v, f) => s + v * (reference[f] as number), 0);
      assert.ok(Math.abs(Math.abs(cosine) - 1) < 1e-4, `component ${m}: |cos| = ${Math.abs(cosine)}`);
    }
    assert.ok(model.totalVariance >= model.variances.reduce((s, v) => s + v, 0));
    // Projections are the centred rows times the components; whitened ones have unit variance.
    const projected = projectPca(tf, model, x, n, false, 64);
    const white = projectPca(tf, model, x, n, true, 64);
    for (let m = 0; m < 4; m++) {
      let s = 0;
      let w = 0;
      for (let i = 0; i < n; i++) {
        s += (projected[i * 4 + m] as number) ** 2;
        w += (white[i * 4 + m] as number) ** 2;
      }
      assert.ok(Math.abs(s / (n - 1) - (model.variances[m] as number)) < 1e-3 * (model.variances[m] as number));
      assert.ok(Math.abs(w / (n - 1) - 1) < 1e-3, `whitened variance ${w / (n - 1)}`);
    }
  });
});

describe('the features stage', () => {
  test('method none writes the pixels /255 and pca writes one row of components per image, for every set', async () => {
    const random = new Random(14);
    const width = 16;
    const pixels = (rows: number): Uint8Array => Uint8Array.from({ length: rows * width }, () => random.int(256));
    const sets = { train: pixels(40), val: pixels(5), test: pixels(7) };
    const split: StageType<Record<string, never>> = {
      name: 'split',
      version: 1,
      schema: {},
      async run(_inputs, _params, ctx) {
        for (const [name, x] of Object.entries(sets)) await ctx.writeNpy(`x_${name}.npy`, ndarray('uint8', [x.length / width, width], x));
      },
    };
    const { artifact } = await runStage(split, {});
    const none = (await runStage(features, { method: 'none', components: 50, whiten: false }, { split: [artifact] })).artifact;
    const train = await none.readNpy('train.npy');
    assert.deepEqual(train.shape, [40, width]);
    assert.deepEqual(Array.from(train.data as Float32Array), Array.from(sets.train, (v) => Math.fround(v / 255)));
    const pca = (await runStage(features, { method: 'pca', components: 3, whiten: true }, { split: [artifact] })).artifact;
    for (const [name, rows] of [['train', 40], ['val', 5], ['test', 7]] as const) assert.deepEqual((await pca.readNpy(`${name}.npy`)).shape, [rows, 3]);
    assert.deepEqual((await pca.readNpy('components.npy')).shape, [3, width]);
  });
});

describe('kNN graph', () => {
  test('matches a brute-force search, nearest first, across several blocks', () => {
    const random = new Random(12);
    const n = 257;
    const d = 9;
    const x = Float32Array.from({ length: n * d }, () => random.normal());
    const k = 7;
    const graph = knnGraph(tf, x, n, d, k, { blockRows: 50 });
    for (let i = 0; i < n; i++) {
      const all = Array.from({ length: n }, (_, j) => {
        let s = 0;
        for (let f = 0; f < d; f++) s += ((x[i * d + f] as number) - (x[j * d + f] as number)) ** 2;
        return { j, s };
      }).filter((c) => c.j !== i);
      all.sort((a, b) => a.s - b.s || a.j - b.j);
      assert.deepEqual(Array.from(graph.indices.subarray(i * k, i * k + k)), all.slice(0, k).map((c) => c.j), `row ${i}`);
      all.slice(0, k).forEach((c, m) => assert.ok(Math.abs((graph.distances[i * k + m] as number) - Math.sqrt(c.s)) < 1e-5));
    }
  });
});

describe('propagation', () => {
  test('conjugate gradients solve a small symmetric positive definite system', () => {
    const a = [[4, 1, 0], [1, 3, 1], [0, 1, 2]];
    const { u } = conjugateGradient((v, out) => a.forEach((row, i) => (out[i] = row.reduce((s, x, j) => s + x * (v[j] as number), 0))), Float64Array.from([1, 2, 3]), 1e-12, 10);
    // Solved by hand: u = (1/9, 5/9, 11/9) ... check A u = b instead of trusting the hand.
    a.forEach((row, i) => assert.ok(Math.abs(row.reduce((s, x, j) => s + x * (u[j] as number), 0) - [1, 2, 3][i]!) < 1e-9));
  });

  test('on two moons with one label each, spreading and Poisson learning beat nearest-centre labels', async () => {
    const { points, truth, n } = twoMoons(200, 0.06, 13);
    const graph = weightedGraph(knnGraph(tf, points, n, 2, 10));
    // One labelled point per moon, as far from the other moon as a user would pick: the tips' middles.
    const seeds = Int32Array.from([0, 1]);
    const seedLabels = Int32Array.from([truth[0] as number, truth[1] as number]);
    // The report's cluster labelling: k-means, then each cluster takes its representative's label.
    const clusters = await kmeans(tf, points, n, 2, { k: 2, seed: 1, nInit: 3 });
    const reps = representatives(clusters.assignment, clusters.distances, 2);
    const nearestCentre = accuracy(Array.from(clusters.assignment, (j) => truth[reps[j] as number] as number), truth);
    for (const method of ['spreading', 'poisson'] as const) {
      const result = propagate(graph, seeds, seedLabels, { method, classes: 2 });
      const propagated = accuracy(result.labels, truth);
      assert.ok(propagated > 0.97, `${method}: ${propagated}`);
      assert.ok(propagated > nearestCentre + 0.1, `${method} ${propagated} vs nearest centre ${nearestCentre}`);
      assert.equal(result.confidence[0], Infinity, 'a seed keeps its label with full confidence');
    }
  });

  test('Poisson learning weights classes by their share of the seeds, and a class no seed carries is never predicted', () => {
    // A path 0-1-2-3-4-5 with unit weights and seeds at both ends, class 0 seeded twice.
    const n = 6;
    const indices = new Int32Array(n);
    const distances = new Float32Array(n).fill(1);
    for (let i = 0; i < n; i++) indices[i] = i === n - 1 ? n - 2 : i + 1;
    const graph = weightedGraph({ n, k: 1, indices, distances });
    const result = propagate(graph, Int32Array.from([0, 5, 1]), Int32Array.from([0, 1, 0]), { method: 'poisson', classes: 3 });
    assert.deepEqual(Array.from(result.labels).slice(0, 2), [0, 0]);
    assert.equal(result.labels[5], 1);
    assert.ok(!Array.from(result.labels).includes(2));
  });
});

describe('typical seeds and small sets trained to fit', () => {
  test('typicality picks the densest member of each cluster and leaves out clusters of five or fewer', () => {
    // Cluster 0: rows 0-6, row 3 has the nearest neighbours; cluster 1: rows 7-11 (five: left out).
    const n = 12;
    const k = 2;
    const assignment = Int32Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    const distances = new Float32Array(n * k).fill(2);
    distances.set([0.5, 0.7], 3 * k);
    distances.set([0.1, 0.1], 9 * k);
    const indices = new Int32Array(n * k);
    assert.deepEqual(Array.from(typicalPicks(assignment, 2, { indices, distances, k }, 2, 5)), [3]);
    assert.deepEqual(Array.from(typicalPicks(assignment, 2, { indices, distances, k }, 2, 4)), [3, 9]);
    // Only the first `neighbors` distances count.
    distances.set([0.6, 5], 4 * k);
    assert.deepEqual(Array.from(typicalPicks(assignment, 2, { indices, distances, k }, 1, 5)), [3]);
    assert.deepEqual(Array.from(typicalPicks(assignment, 2, { indices, distances, k }, 2, 5)), [3]);
  });

  test('min_steps raises the epochs of a small set until it makes that many optimizer steps, and only when given', () => {
    assert.equal(epochsFor({ epochs: 20, batch_size: 2000 }, 100), 20);
    assert.equal(epochsFor({ epochs: 20, batch_size: 2000, min_steps: 500 }, 100), 500);
    assert.equal(epochsFor({ epochs: 20, batch_size: 2000, min_steps: 500 }, 5000), 167);
    assert.equal(epochsFor({ epochs: 20, batch_size: 2000, min_steps: 10 }, 55000), 20);
  });
});

describe('a better-labels pipeline', () => {
  test('PCA features feed k-means, one shared kNN graph, typical seeds and both propagations, and train fits small sets', async () => {
    const rig = await Rig.create();
    const dataDir = join(rig.dir, 'data');
    await writeTinyIdx(dataDir, { train: 160, test: 40, classes: 5 });
    await rig.write('p.yaml', `name: better
matrix:
  method: [spreading, poisson]
stages:
  data: { uses: dataset, with: { name: fashion-mnist, path: ${JSON.stringify(dataDir)} } }
  split: { uses: split, needs: [data], with: { validation: 20 } }
  pca: { uses: features, needs: [split], with: { components: 8 } }
  cluster: { uses: kmeans, needs: [split, pca], with: { k: 10, seed: 1 } }
  graph: { uses: knn-graph, needs: [split, pca], with: { k: 8 } }
  seed: { uses: seed-labels, needs: [split, cluster, graph], with: { strategy: typical, neighbors: 5, min_cluster_size: 2 } }
  spread: { uses: propagate, needs: [split, graph, seed], with: { method: "\${{ matrix.method }}", percent: 50 } }
  train:
    uses: train
    needs: [split, spread]
    with:
      model: { input_shape: [28, 28], layers: [{ type: flatten }, { type: dense, units: 8, activation: relu }, { type: dense, units: 10, activation: softmax }] }
      epochs: 1
      batch_size: 500
      min_steps: 3
  evaluate: { uses: evaluate, needs: [train, split] }
`);
    const result = await rig.run(['run', 'p.yaml', '--json', '--jobs', '1']);
    assert.equal(result.code, 0, result.stderr);
    const ran = executed(result);
    assert.deepEqual(ran.filter((id) => id.startsWith('graph')), ['graph'], 'one kNN graph serves both methods');
    assert.equal(ran.filter((id) => id.startsWith('spread')).length, 2);
    const ends = result.events.flatMap((e) => (e.event === 'stage-end' && e.status === 'done' ? [e] : []));
    const summaryOf = (id: string): Record<string, unknown> => ((ends.find((e) => e.id === id) as unknown as { summary: { metrics: Record<string, unknown> } }).summary.metrics);
    const seed = summaryOf('seed');
    assert.ok((seed['samples'] as number) >= 1 && (seed['samples'] as number) <= 10);
    assert.equal(seed['trueLabelsUsed'], seed['samples']);
    for (const id of ['spread[method=spreading]', 'spread[method=poisson]']) {
      const spread = summaryOf(id);
      assert.equal(spread['samples'], 70, `${id} keeps half of the 140 training images`);
      assert.equal(spread['trueLabelsUsed'], seed['samples']);
      assert.ok((spread['labelAccuracy'] as number) > 0.5, `${id}: ${String(spread['labelAccuracy'])}`);
    }
    // 70 images in batches of 500 make one step per epoch: min_steps 3 makes three epochs.
    assert.equal(summaryOf('train[method=poisson]')['epochs'], 3);
    // The results' label columns come from the nearest labelling stage: propagate here, not the seeds behind it.
    const json = await rig.run(['results', 'p.yaml', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const rows = (JSON.parse(json.stdout) as { rows: Record<string, unknown>[] }).rows;
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.equal(row['labels.samples'], 70);
      assert.equal(row['labels.trueLabelsUsed'], seed['samples']);
      assert.equal(row['seed-labels.samples'], seed['samples']);
    }
  });
});
