import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { compileSchema } from '../src/config/validate-schema.js';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { kmeans, kmeansPlusPlus, kmeansReference } from '../src/ml/kmeans/kmeans.js';
import type { KMeansResult } from '../src/ml/kmeans/kmeans.js';
import { stage as kmeansStage } from '../src/stages/kmeans.js';
import type { KMeansParams } from '../src/stages/kmeans.js';
import { stage as seedLabels } from '../src/stages/seed-labels.js';
import type { SeedLabelsParams } from '../src/stages/seed-labels.js';
import { StageUserError } from '../src/stages/types.js';
import type { ArtifactReader, StageType } from '../src/stages/types.js';
import { ndarray } from '../src/util/npy.js';
import { Random } from '../src/util/random.js';
import { runStage } from './support/stage-harness.js';

let tf: Tf;
before(async () => {
  ({ tf } = await loadTf());
});

/** Gaussian blobs around random centres: `perCluster` points each, `spread` their standard deviation. */
function blobs(seed: number, k: number, perCluster: number, d: number, spread: number, separation = 10): { points: Float32Array; truth: Int32Array; n: number } {
  const random = new Random(seed);
  const centres = Array.from({ length: k }, () => Array.from({ length: d }, () => random.next() * separation));
  const n = k * perCluster;
  const points = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = i % k;
    truth[i] = j;
    for (let f = 0; f < d; f++) points[i * d + f] = (centres[j]?.[f] ?? 0) + spread * random.normal();
  }
  return { points, truth, n };
}

function rows(points: Float32Array, d: number, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * d);
  indices.forEach((row, j) => out.set(points.subarray(row * d, row * d + d), j * d));
  return out;
}

function relativeGap(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);
}

/** True when each found cluster holds points of one true cluster only, and each true cluster is one found cluster. */
function samePartition(found: Int32Array, truth: Int32Array): boolean {
  const forward = new Map<number, number>();
  const backward = new Map<number, number>();
  for (let i = 0; i < found.length; i++) {
    const f = found[i] as number;
    const t = truth[i] as number;
    if ((forward.get(f) ?? t) !== t || (backward.get(t) ?? f) !== f) return false;
    forward.set(f, t);
    backward.set(t, f);
  }
  return true;
}

function assertSameResult(fast: KMeansResult, reference: KMeansResult, d: number): void {
  assert.ok(relativeGap(fast.inertia, reference.inertia) < 1e-3, `inertia ${fast.inertia} vs reference ${reference.inertia}`);
  assert.deepEqual(Array.from(fast.assignment), Array.from(reference.assignment));
  for (let q = 0; q < fast.centers.length; q++) {
    assert.ok(Math.abs((fast.centers[q] as number) - (reference.centers[q] as number)) < 1e-4, `centre value ${q} (dimension ${q % d})`);
  }
}

describe('fast k-means', () => {
  test('the fast path agrees with ml-kmeans from the same initial centres on overlapping blobs', async () => {
    const d = 6;
    const { points, n } = blobs(1, 5, 60, d, 2.5);
    // Starting from five points of a shuffled order takes several iterations on overlapping blobs.
    const init = rows(points, d, Array.from(new Random(2).permutation(n).slice(0, 5)));
    const options = { k: 5, init, maxIter: 200, tol: 0 };
    const fast = await kmeans(tf, points, n, d, options);
    const reference = await kmeansReference(points, n, d, options);
    assert.ok(fast.iterations > 2, `took ${fast.iterations} iterations`);
    assertSameResult(fast, reference, d);
  });

  test('the fast path agrees with ml-kmeans on structureless data, across several chunks and two threads', async () => {
    const d = 4;
    const n = 500;
    const random = new Random(7);
    const points = Float32Array.from({ length: n * d }, () => random.next());
    const init = kmeansPlusPlus(tf, points, n, d, 6, new Random(3));
    const reference = await kmeansReference(points, n, d, { k: 6, init, maxIter: 300 });
    for (const threads of [1, 2]) {
      const fast = await kmeans(tf, points, n, d, { k: 6, init, maxIter: 300, tol: 0, chunkRows: 128, threads });
      assertSameResult(fast, reference, d);
    }
  });

  test('the distances are the Euclidean distances to the assigned centres and sum to the inertia', async () => {
    const d = 3;
    const { points, n } = blobs(4, 3, 20, d, 1);
    const tensors = tf.memory().numTensors;
    const result = await kmeans(tf, points, n, d, { k: 3, seed: 1 });
    assert.equal(tf.memory().numTensors, tensors, 'k-means leaves no tensor behind');
    let inertia = 0;
    for (let i = 0; i < n; i++) {
      const c = result.assignment[i] as number;
      let s = 0;
      for (let f = 0; f < d; f++) s += ((points[i * d + f] as number) - (result.centers[c * d + f] as number)) ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - (result.distances[i] as number)) < 1e-5);
      inertia += s;
    }
    assert.ok(relativeGap(inertia, result.inertia) < 1e-6);
  });

  test('the same seed gives identical centres and assignments', async () => {
    const d = 8;
    const { points, n } = blobs(5, 6, 40, d, 3);
    const run = (seed: number) => kmeans(tf, points, n, d, { k: 6, seed, nInit: 2 });
    const [a, b] = [await run(11), await run(11)];
    assert.deepEqual(a.centers, b.centers);
    assert.deepEqual(a.assignment, b.assignment);
    assert.equal(a.inertia, b.inertia);
  });

  test('k-means++ recovers well separated blobs and ends no worse than a start inside one blob', async () => {
    const d = 5;
    const k = 5;
    const { points, truth, n } = blobs(8, k, 40, d, 0.3, 20);
    const good = await kmeans(tf, points, n, d, { k, seed: 0 });
    assert.ok(samePartition(good.assignment, truth), 'k-means++ should find the blobs');
    // Points 0, 5, 10... all belong to blob 0.
    const bad = await kmeans(tf, points, n, d, { k, init: rows(points, d, [0, 5, 10, 15, 20]) });
    assert.ok(good.inertia <= bad.inertia * (1 + 1e-6), `k-means++ ${good.inertia} vs bad start ${bad.inertia}`);
  });

  test('random initialisation with several runs keeps the run of lowest inertia', async () => {
    const d = 4;
    const { points, n } = blobs(9, 8, 15, d, 1.5);
    const one = await kmeans(tf, points, n, d, { k: 8, init: 'random', seed: 4, nInit: 1 });
    const five = await kmeans(tf, points, n, d, { k: 8, init: 'random', seed: 4, nInit: 5 });
    // The first of the five runs is the single run, so the best of five cannot be worse.
    assert.ok(five.inertia <= one.inertia);
  });

  test('an empty cluster takes the point farthest from its centre', async () => {
    // On a line: the centre at 100 wins no point, so it moves to 2, the point farthest from its centre (0.5).
    const points = Float32Array.from([0, 1, 2, 10, 11]);
    const iterations: number[] = [];
    const result = await kmeans(tf, points, 5, 1, { k: 3, init: Float32Array.from([0.5, 100, 10]), onIteration: (i) => iterations.push(i) });
    assert.deepEqual(Array.from(result.assignment), [0, 0, 1, 2, 2]);
    assert.deepEqual(Array.from(result.centers), [0.5, 2, 10.5]);
    assert.ok(Math.abs(result.inertia - 1) < 1e-6);
    assert.deepEqual(iterations, iterations.map((_, i) => i + 1));
  });

  test('identical points converge at once with every centre on them', async () => {
    const points = new Float32Array(6 * 2).fill(0.5);
    const result = await kmeans(tf, points, 6, 2, { k: 3, seed: 0 });
    assert.deepEqual(Array.from(result.centers), new Array(6).fill(0.5));
    assert.equal(result.inertia, 0);
    assert.equal(result.iterations, 1);
  });

  test('an aborted signal stops the iterations', async () => {
    const { points, n } = blobs(3, 3, 10, 2, 1);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await assert.rejects(kmeans(tf, points, n, 2, { k: 3, signal: controller.signal }), /stop/);
  });
});

describe('bounded k-means (hamerly, elkan)', () => {
  /** Runs both algorithms from the same start and checks that they agree. */
  async function agree(points: Float32Array, n: number, d: number, k: number, init: Float32Array, extra: { chunkRows?: number; maxIter?: number } = {}): Promise<KMeansResult> {
    const lloyd = await kmeans(tf, points, n, d, { k, init, tol: 0, maxIter: 100, ...extra, algorithm: 'lloyd' });
    for (const algorithm of ['hamerly', 'elkan'] as const) {
      for (const threads of [1, 2]) {
        const inertias: number[] = [];
        const run = await kmeans(tf, points, n, d, { k, init, tol: 0, maxIter: 100, ...extra, threads, algorithm, onIteration: (_, inertia) => inertias.push(inertia) });
        const what = `${algorithm}, ${threads} thread(s)`;
        assert.deepEqual(Array.from(run.assignment), Array.from(lloyd.assignment), `assignments, ${what}`);
        assert.ok(relativeGap(run.inertia, lloyd.inertia) < 1e-6, `inertia ${run.inertia} vs Lloyd ${lloyd.inertia}, ${what}`);
        assert.deepEqual(run.centers, lloyd.centers, `centres, ${what}`);
        assert.equal(run.iterations, lloyd.iterations, `iterations, ${what}`);
        assert.equal(inertias.length, run.iterations, `one progress call per iteration, ${what}`);
      }
    }
    return lloyd;
  }

  test('it gives Lloyd\'s clusters on well separated blobs', async () => {
    const d = 16;
    const { points, n } = blobs(21, 12, 80, d, 0.8, 20);
    const init = kmeansPlusPlus(tf, points, n, d, 12, new Random(1));
    await agree(points, n, d, 12, init, { chunkRows: 256 });
  });

  test('it gives Lloyd\'s clusters on overlapping blobs, with many iterations that skip most points', async () => {
    const d = 10;
    const { points, n } = blobs(22, 10, 150, d, 3);
    const init = rows(points, d, Array.from(new Random(5).permutation(n).slice(0, 15)));
    const result = await agree(points, n, d, 15, init, { chunkRows: 200, maxIter: 300 });
    assert.ok(result.iterations > 5, `took ${result.iterations} iterations`);
    for (const algorithm of ['hamerly', 'elkan'] as const) {
      const bounded = await kmeans(tf, points, n, d, { k: 15, init, tol: 0, maxIter: 300, chunkRows: 200, algorithm });
      assert.ok(bounded.scoredRows < 0.8 * result.scoredRows, `${algorithm} scored ${bounded.scoredRows} rows vs Lloyd's ${result.scoredRows}`);
    }
  });

  test('it gives Lloyd\'s clusters when clusters empty on the way', async () => {
    const d = 4;
    const { points, n } = blobs(23, 4, 100, d, 0.5, 10);
    // Five far starting centres and three of them inside one blob: some clusters lose every point.
    const init = new Float32Array(8 * d);
    init.set(rows(points, d, [0, 4, 8, 1, 2]), 0);
    for (let q = 5 * d; q < 8 * d; q++) init[q] = 100 + q;
    const result = await agree(points, n, d, 8, init, { chunkRows: 64 });
    assert.ok(new Set(result.assignment).size === 8, 'every cluster ends with points');
  });

  test('one cluster takes Lloyd\'s iterations with every algorithm, since all share one iteration driver', async () => {
    const d = 3;
    const { points, n } = blobs(25, 2, 40, d, 1, 5);
    const result = await agree(points, n, d, 1, rows(points, d, [0]));
    // The first iteration labels every point (none had a label), the second finds nothing changed.
    assert.equal(result.iterations, 2);
  });

  test('structureless data across chunks and two threads: Lloyd\'s clusters, and the same seed gives the same result', async () => {
    const d = 5;
    const n = 900;
    const random = new Random(24);
    const points = Float32Array.from({ length: n * d }, () => random.next());
    await agree(points, n, d, 9, kmeansPlusPlus(tf, points, n, d, 9, new Random(6)), { chunkRows: 128 });
    const run = (threads: number) => kmeans(tf, points, n, d, { k: 9, seed: 3, nInit: 2, chunkRows: 128, threads });
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    assert.deepEqual(a.centers, b.centers);
    assert.deepEqual(a.assignment, b.assignment);
    assert.deepEqual(a.centers, c.centers);
    assert.deepEqual(a.assignment, c.assignment);
    assert.equal(a.inertia, c.inertia);
  });

  test('an unknown algorithm is rejected', async () => {
    const points = Float32Array.from([0, 1, 2]);
    await assert.rejects(kmeans(tf, points, 3, 1, { k: 2, algorithm: 'yinyang' as 'lloyd' }), /unknown k-means algorithm "yinyang"/);
  });
});

/** A stand-in `split` stage writing the given training set (and a tiny validation and test set). */
function fakeSplit(x: Uint8Array, y: Int32Array, d: number): StageType<Record<string, never>> {
  const n = y.length;
  return {
    name: 'split',
    version: 1,
    schema: {},
    async run(_inputs, _params, ctx) {
      await ctx.writeNpy('x_train.npy', ndarray('uint8', [n, d], x));
      await ctx.writeNpy('y_train.npy', ndarray('int32', [n], y));
      for (const part of ['val', 'test']) {
        await ctx.writeNpy(`x_${part}.npy`, ndarray('uint8', [1, d], x.slice(0, d)));
        await ctx.writeNpy(`y_${part}.npy`, ndarray('int32', [1], y.slice(0, 1)));
      }
      await ctx.writeJson('meta.json', { classes: ['a', 'b', 'c'], shape: [d] });
      return { metrics: { train: n }, timings: {} };
    },
  };
}

function withDefaults<P>(stage: StageType<P>, params: Record<string, unknown>): P {
  const copy = { ...params };
  assert.ok(compileSchema(stage.schema)(copy), `parameters ${JSON.stringify(params)} should be valid`);
  return copy as P;
}

async function rejectsWithUserError(promise: Promise<unknown>, message: RegExp): Promise<StageUserError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  assert.ok(error instanceof StageUserError, `expected a StageUserError, got ${String(error)}`);
  assert.match(error.message, message);
  return error;
}

describe('kmeans stage', () => {
  const d = 4;
  const { points, truth } = blobs(12, 3, 10, d, 0.02, 1);
  const x = Uint8Array.from(points, (v) => Math.max(0, Math.min(255, Math.round(v * 255))));
  let split: ArtifactReader;
  before(async () => {
    split = (await runStage(fakeSplit(x, truth, d), {})).artifact;
  });

  test('the schema fills in the documented defaults', () => {
    assert.deepEqual(withDefaults(kmeansStage, { k: 3 }), { k: 3, n_init: 1, max_iter: 100, tol: 1e-4, seed: 0, init: 'k-means++', threads: 1, algorithm: 'auto' });
    assert.equal(compileSchema(kmeansStage.schema)({ k: 3, algorithm: 'yinyang' }), false);
    assert.equal(compileSchema(kmeansStage.schema)({}), false);
    assert.equal(compileSchema(kmeansStage.schema)({ k: 3, init: 'kmeans++' }), false);
  });

  test('it writes centres, assignments and distances for the /255 features and reports each iteration', async () => {
    const params = withDefaults<KMeansParams>(kmeansStage, { k: 3, seed: 2 });
    const { artifact, progress } = await runStage(kmeansStage, params, { data: [split] });
    const centers = await artifact.readNpy('centers.npy');
    const assignment = await artifact.readNpy('assignment.npy');
    const distances = await artifact.readNpy('distances.npy');
    assert.deepEqual([centers.dtype, centers.shape], ['float32', [3, d]]);
    assert.deepEqual([assignment.dtype, assignment.shape], ['int32', [30]]);
    assert.deepEqual([distances.dtype, distances.shape], ['float32', [30]]);
    const direct = await kmeans(tf, Float32Array.from(x, (v) => v / 255), 30, d, { k: 3, seed: 2, maxIter: 100 });
    assert.deepEqual(centers.data, direct.centers);
    assert.deepEqual(assignment.data, direct.assignment);
    assert.ok(samePartition(direct.assignment, truth));
    const summary = artifact.summary?.metrics ?? {};
    assert.deepEqual([summary['k'], summary['n'], summary['iterations']], [3, 30, direct.iterations]);
    assert.ok(Math.abs((summary['inertia'] ?? NaN) - direct.inertia) < 1e-9);
    assert.equal(progress.length, direct.iterations);
    assert.deepEqual(progress.map((p) => [p.unit, p.step, p.total]), progress.map((_, i) => ['iteration', i + 1, 100]));
    assert.ok(progress.every((p) => typeof p.metrics?.['inertia'] === 'number'));
  });

  test('k larger than the number of training images is a user error', async () => {
    const params = withDefaults<KMeansParams>(kmeansStage, { k: 31 });
    await rejectsWithUserError(runStage(kmeansStage, params, { data: [split] }), /k is 31 but the training set has only 30 images/);
  });
});

/** A stand-in `kmeans` stage writing hand-made clusters. */
function fakeKmeans(centers: Float32Array, d: number, assignment: Int32Array, distances: Float32Array): StageType<Record<string, never>> {
  return {
    name: 'kmeans',
    version: 1,
    schema: {},
    async run(_inputs, _params, ctx) {
      await ctx.writeNpy('centers.npy', ndarray('float32', [centers.length / d, d], centers));
      await ctx.writeNpy('assignment.npy', ndarray('int32', [assignment.length], assignment));
      await ctx.writeNpy('distances.npy', ndarray('float32', [distances.length], distances));
    },
  };
}

describe('seed-labels stage', () => {
  // Eight images in four clusters; cluster 3 is empty.
  //   cluster 0: images 0, 1, 2 at distances 0.3, 0.1, 0.2 -> representative 1 (true label 1)
  //   cluster 1: images 3, 4, 5, 6 at 0.5, 0.2, 0.2, 0.9 -> representative 4 (the lower index of a tie; true label 2)
  //   cluster 2: image 7 -> representative 7 (true label 1)
  const d = 2;
  const truth = Int32Array.from([1, 1, 0, 2, 2, 0, 2, 1]);
  const assignment = Int32Array.from([0, 0, 0, 1, 1, 1, 1, 2]);
  const distances = Float32Array.from([0.3, 0.1, 0.2, 0.5, 0.2, 0.2, 0.9, 0.4]);
  const centers = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
  let split: ArtifactReader;
  let clusters: ArtifactReader;
  before(async () => {
    split = (await runStage(fakeSplit(new Uint8Array(8 * d), truth, d), {})).artifact;
    clusters = (await runStage(fakeKmeans(centers, d, assignment, distances), {})).artifact;
  });

  async function seed(params: Record<string, unknown>, inputs?: Record<string, ArtifactReader[]>) {
    const { artifact } = await runStage(seedLabels, withDefaults<SeedLabelsParams>(seedLabels, params), inputs ?? { data: [split], clusters: [clusters] });
    const read = async (name: string) => Array.from((await artifact.readNpy(name)).data);
    return { artifact, read, summary: artifact.summary };
  }

  test('full labels every image with its cluster representative\'s label', async () => {
    const { read, summary } = await seed({ strategy: 'full' });
    assert.deepEqual(await read('indices.npy'), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(await read('y.npy'), [1, 1, 1, 2, 2, 2, 2, 1]);
    // Wrong: image 2 (true 0) and image 5 (true 0).
    assert.deepEqual(summary, { metrics: { samples: 8, trueLabelsUsed: 3, labelAccuracy: 0.75, clusters: 4 }, timings: {}, details: { strategy: 'full' } });
  });

  test('part keeps the given share of each cluster nearest its centre, rounded up', async () => {
    const half = await seed({ strategy: 'part', percent: 50 });
    assert.deepEqual(await half.read('indices.npy'), [1, 2, 4, 5, 7]);
    assert.deepEqual(await half.read('y.npy'), [1, 1, 2, 2, 1]);
    assert.deepEqual(half.summary, { metrics: { samples: 5, trueLabelsUsed: 3, labelAccuracy: 0.6, clusters: 4 }, timings: {}, details: { strategy: 'part' } });
    const tenth = await seed({ strategy: 'part', percent: 10 });
    assert.deepEqual(await tenth.read('indices.npy'), [1, 4, 7]);
    const whole = await seed({ strategy: 'part', percent: 100 });
    assert.deepEqual(await whole.read('indices.npy'), [1, 2, 0, 4, 5, 3, 6, 7]);
  });

  test('representatives are the images nearest each centre with their true labels', async () => {
    const { read, summary } = await seed({ strategy: 'representatives' });
    assert.deepEqual(await read('indices.npy'), [1, 4, 7]);
    assert.deepEqual(await read('y.npy'), [1, 2, 1]);
    assert.deepEqual(summary, { metrics: { samples: 3, trueLabelsUsed: 3, labelAccuracy: 1, clusters: 4 }, timings: {}, details: { strategy: 'representatives' } });
  });

  test('centers are the non-empty clusters\' centres labelled like their representatives', async () => {
    const { artifact, read, summary } = await seed({ strategy: 'centers' });
    const x = await artifact.readNpy('x.npy');
    assert.deepEqual([x.dtype, x.shape], ['float32', [3, d]]);
    assert.deepEqual(x.data, centers.slice(0, 3 * d));
    assert.deepEqual(await read('y.npy'), [1, 2, 1]);
    await assert.rejects(artifact.readNpy('indices.npy'));
    assert.deepEqual(summary, { metrics: { samples: 3, trueLabelsUsed: 3, labelAccuracy: null, clusters: 4 }, timings: {}, details: { strategy: 'centers' } });
  });

  test('random draws n seeded images with their true labels and needs no clusters', async () => {
    const { read, summary } = await seed({ strategy: 'random', n: 3, seed: 5 }, { data: [split] });
    const expected = Array.from(new Random(5).permutation(8).slice(0, 3).sort());
    assert.deepEqual(await read('indices.npy'), expected);
    assert.deepEqual(await read('y.npy'), expected.map((i) => truth[i]));
    assert.deepEqual(summary, { metrics: { samples: 3, trueLabelsUsed: 3, labelAccuracy: 1, clusters: null }, timings: {}, details: { strategy: 'random' } });
  });

  test('all keeps every image with its true label', async () => {
    const { read, summary } = await seed({ strategy: 'all' }, { data: [split] });
    assert.deepEqual(await read('indices.npy'), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(await read('y.npy'), Array.from(truth));
    assert.deepEqual(summary, { metrics: { samples: 8, trueLabelsUsed: 8, labelAccuracy: 1, clusters: null }, timings: {}, details: { strategy: 'all' } });
  });

  test('a cluster strategy without a kmeans input tells the user to add one to needs', async () => {
    const error = await rejectsWithUserError(
      runStage(seedLabels, withDefaults<SeedLabelsParams>(seedLabels, { strategy: 'part', percent: 5 }), { data: [split] }),
      /strategy "part" labels through k-means clusters, but none of its needs is a "kmeans" stage/,
    );
    assert.equal(error.hint, "add a kmeans stage to this stage's needs");
  });

  test('random with more images than the training set is a user error', async () => {
    await rejectsWithUserError(
      runStage(seedLabels, withDefaults<SeedLabelsParams>(seedLabels, { strategy: 'random', n: 9 }), { data: [split] }),
      /n is 9 but the training set has only 8 images/,
    );
  });

  test('the schema requires percent for part and n for random', () => {
    const valid = compileSchema(seedLabels.schema);
    assert.equal(valid({ strategy: 'part' }), false);
    assert.equal(valid({ strategy: 'part', percent: 0 }), false);
    assert.equal(valid({ strategy: 'part', percent: 101 }), false);
    assert.equal(valid({ strategy: 'part', percent: 0.5 }), true);
    assert.equal(valid({ strategy: 'random' }), false);
    assert.equal(valid({ strategy: 'random', n: 10 }), true);
    assert.equal(valid({ strategy: 'centers' }), true);
    assert.equal(valid({ strategy: 'middle' }), false);
  });
});
