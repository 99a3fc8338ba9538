import { classificationMetrics, loadLayersModelFromFolder, predictLayersModel, predictMlp, saveMlp } from '../ml/mlp/index.js';
import { loadTf } from '../ml/backend.js';
import { confidentPredictions, QUERY_STRATEGIES, selectQueries, type QueryStrategy } from '../ml/query.js';
import { ndarray } from '../util/npy.js';
import type { EvaluationFile } from './evaluate.js';
import { readArray, readImages } from './inputs.js';
import { readClusters, typicality } from './seed-labels.js';
import { fitMlp, gatherRows, TRAIN_SCHEMA, type SplitMetaFields, type TrainParams } from './train.js';
import type { ArtifactReader, StageContext, StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** The `with` block of an `active-learning` stage: a query strategy, the batches, and the training of `train`. */
export interface ActiveLearningParams extends TrainParams {
  /** Absent in round 1, which queries nothing (see `roundParams`). */
  readonly strategy?: QueryStrategy;
  /** Images labelled per round after the first: one count, or one per round (round r takes entry r - 2, the last repeating); absent in round 1. */
  readonly batch?: number | readonly number[];
  /** Self-training: each round also trains on the previous model's predictions of at least this probability (not counted as labels). */
  readonly self_training?: { readonly threshold: number };
  /** For `typical`: the neighbours whose mean distance measures density (20, as TypiClust). */
  readonly neighbors?: number;
}

/** The images labelled in a round, and how they were labelled. */
interface RoundState {
  /** Training rows labelled by the oracle (the seed set and every query so far), in the order labelled. */
  readonly indices: Int32Array;
  readonly labels: Int32Array;
  /** True labels consumed: the seed set's cost plus every query. */
  readonly consumed: number;
}

/** What the first round starts from: the seed set's rows with their labels, and what they cost. */
async function seedState(seeds: ArtifactReader): Promise<RoundState> {
  const labels = (await readArray(seeds, 'y.npy', 'int32', ['*'])).data;
  let indices: Int32Array;
  try {
    indices = (await readArray(seeds, 'indices.npy', 'int32', [labels.length])).data;
  } catch (error) {
    if (error instanceof StageUserError) throw error;
    throw new StageUserError(`the seed set of "${seeds.stage}" has no indices.npy: active learning starts from labelled training images, not centres`, 'start from a seed-labels strategy that labels images (representatives, typical, random)');
  }
  const cost = seeds.summary?.metrics['trueLabelsUsed'];
  // Propagated labels would pass for the oracle's: never queried, never corrected.
  if (typeof cost === 'number' && cost < labels.length) {
    throw new StageUserError(`the seed set of "${seeds.stage}" labels ${labels.length} images from ${cost} true labels: active learning takes every label it starts from as the oracle's`, 'start from a seed-labels strategy that labels each image it picks itself (representatives, typical, random)');
  }
  return { indices, labels, consumed: typeof cost === 'number' ? cost : labels.length };
}

/** The previous round's state, as it wrote it. */
async function previousState(previous: ArtifactReader): Promise<RoundState> {
  const labels = (await readArray(previous, 'y.npy', 'int32', ['*'])).data;
  const indices = (await readArray(previous, 'indices.npy', 'int32', [labels.length])).data;
  const consumed = previous.summary?.metrics['trueLabelsUsed'];
  if (typeof consumed !== 'number') throw new StageUserError(`the previous round "${previous.stage}" has no labels count`, 'rerun it with --force');
  return { indices, labels, consumed };
}

/** The batch of round `round` (from 2). */
export function batchOf(batch: number | readonly number[], round: number): number {
  if (typeof batch === 'number') return batch;
  return batch[Math.min(round - 2, batch.length - 1)] ?? 0;
}

/** How a round after the first queries; the planner hands those rounds their strategy and batch. */
interface Query {
  readonly strategy: QueryStrategy;
  readonly batch: number;
  readonly neighbors: number;
}

/** TypiClust's neighbours for density, the schema's default. */
const NEIGHBORS = 20;

function queryOf(params: ActiveLearningParams, round: number): Query {
  if (params.strategy === undefined || params.batch === undefined) throw new StageUserError(`round ${round} has no strategy or batch to query with`, 'give the stage "strategy" and "batch"');
  return { strategy: params.strategy, batch: batchOf(params.batch, round), neighbors: params.neighbors ?? NEIGHBORS };
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function queryInputs(params: Query, inputs: Parameters<StageType['run']>[0], n: number, ctx: StageContext): Promise<{ clusters?: Int32Array; typicality?: Float64Array }> {
  if (params.strategy !== 'typical' && params.strategy !== 'cluster-diverse') return {};
  const clusters = await readClusters(inputs.byType('kmeans', `strategy "${params.strategy}" picks from the clusters holding the fewest labels`));
  if (clusters.assignment.length !== n) throw new StageUserError(`the kmeans input clustered ${clusters.assignment.length} images but the split has ${n} training images`, 'make the kmeans stage need the same split as this stage');
  if (params.strategy === 'cluster-diverse') return { clusters: clusters.assignment };
  const graph = inputs.byType('knn-graph', 'strategy "typical" measures density on a kNN graph');
  const distances = await readArray(graph, 'distances.npy', 'float32', [n, '*']);
  const k = distances.shape[1] ?? 0;
  if (params.neighbors > k) throw new StageUserError(`neighbors is ${params.neighbors} but the kNN graph of ${graph.stage} keeps ${k}`, `choose neighbors at most ${k}, or raise the graph's k`);
  ctx.log('debug', `typicality over ${params.neighbors} neighbours of ${graph.stage}`);
  return { clusters: clusters.assignment, typicality: typicality({ distances: distances.data, k }, n, params.neighbors) };
}

/**
 * One round of active learning. Round 1 trains on the seed set; each later
 * round asks the oracle (the split's true labels) for the labels of a batch
 * picked with the previous round's model, optionally adds that model's
 * confident predictions (self-training), and trains a new model from
 * scratch. Every round scores its model on the test set and keeps its
 * labelled set (`indices.npy`, `y.npy`), its model, `round.json` and the test set's `metrics.json` (as evaluate writes it).
 */
export const stage: StageType<ActiveLearningParams> = {
  name: 'active-learning',
  version: 2,
  requires: [
    { types: ['split'], why: 'active learning reads the training images, the oracle\'s labels and the test set of a split' },
    { types: ['seed-labels'], why: 'active learning starts from a seed set of labelled images' },
    { types: ['kmeans'], why: 'this strategy picks from the clusters holding the fewest labels', when: { strategy: ['typical', 'cluster-diverse'] } },
    { types: ['knn-graph'], why: 'strategy "typical" measures density on a kNN graph', when: { strategy: ['typical'] } },
  ],
  description: 'One round of active learning (give the stage rounds:): query a batch of labels with the previous round\'s model, retrain, score on the test set.',
  heavy: true,
  numeric: true,
  role: 'evaluation',
  // Round 1 trains on the seed set and queries nothing: its key leaves the query out, so every strategy shares it; later rounds key on their own batch.
  roundParams: { firstIgnores: ['strategy', 'batch', 'self_training', 'neighbors'], perRound: ['batch'] },
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    required: ['strategy', 'batch'],
    properties: {
      strategy: {
        description: 'How each round picks the images to label: least-confidence, margin or entropy of the previous model; random; typical (the most typical unlabelled image of the cluster holding the fewest labels, TypiClust); cluster-diverse (the smallest-margin unlabelled image of that cluster).',
        enum: [...QUERY_STRATEGIES],
      },
      batch: {
        description: 'Images labelled in each round after the first: one count, or a list with one count per round (round 2 takes the first; the last repeats).',
        anyOf: [{ type: 'integer', minimum: 1 }, { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1 } }],
      },
      self_training: {
        description: 'Self-training: each round also trains on the previous model\'s own predictions for unlabelled images with at least this probability; they are not counted as labels consumed.',
        type: 'object',
        additionalProperties: false,
        required: ['threshold'],
        properties: { threshold: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'The least predicted probability kept.' } },
      },
      neighbors: { description: 'For typical: the nearest neighbours whose mean distance measures density (at most the kNN graph\'s k).', type: 'integer', minimum: 1, default: NEIGHBORS },
      ...TRAIN_SCHEMA.properties,
    },
  },
  async run(inputs, params, ctx): Promise<StageSummary> {
    const split = inputs.byType('split', 'active learning reads the oracle\'s labels of a split');
    const [truthArray, meta] = await Promise.all([readArray(split, 'y_train.npy', 'int32', ['*']), split.readJson<SplitMetaFields>('meta.json')]);
    const truth = truthArray.data;
    const n = truth.length;
    const images = await readImages(split, 'x_train.npy', [n, '*']);
    const previous = inputs.previousRound();
    const round = previous === null ? 1 : (previous.summary?.metrics['round'] ?? 0) + 1;

    let state = previous === null ? await seedState(inputs.byType('seed-labels', 'active learning starts from a seed set')) : await previousState(previous);
    for (const row of state.indices) if (row < 0 || row >= n) throw new StageUserError(`the labelled set holds row ${row}, outside the split's ${n} training images`);
    let queried = 0;
    let pseudo: { indices: Int32Array; labels: Int32Array } = { indices: new Int32Array(0), labels: new Int32Array(0) };
    if (previous !== null) {
      const { tf } = await loadTf((message) => ctx.log('warn', message));
      const model = await loadLayersModelFromFolder(tf, previous.dir);
      let probabilities: Float32Array;
      try {
        probabilities = predictLayersModel(tf, model, images.pixels, n);
      } finally {
        model.dispose();
      }
      const labelled = new Uint8Array(n);
      for (const row of state.indices) labelled[row] = 1;
      const query = queryOf(params, round);
      const picks = selectQueries({
        strategy: query.strategy,
        batch: query.batch,
        labelled,
        probabilities,
        classes: meta.classes,
        seed: params.seed * 1_000_003 + round,
        ...(await queryInputs(query, inputs, n, ctx)),
      });
      queried = picks.length;
      // The oracle: each picked image's true label, counted.
      state = { indices: concat(state.indices, picks), labels: concat(state.labels, picks.map((row) => truth[row] as number)), consumed: state.consumed + picks.length };
      if (params.self_training !== undefined) {
        for (const row of picks) labelled[row] = 1;
        pseudo = confidentPredictions(probabilities, meta.classes, labelled, params.self_training.threshold);
      }
    }
    const right = (indices: Int32Array, labels: Int32Array): number => indices.reduce((sum, row, i) => sum + (labels[i] === truth[row] ? 1 : 0), 0);
    const pseudoRight = right(pseudo.indices, pseudo.labels);

    const rows = concat(state.indices, pseudo.indices);
    const fitted = await fitMlp(params, { x: gatherRows(images, rows), y: concat(state.labels, pseudo.labels), name: 'labelled' }, split, ctx);
    const yTest = (await readArray(split, 'y_test.npy', 'int32', ['*'])).data;
    const { pixels: xTest } = await readImages(split, 'x_test.npy', [yTest.length, '*']);
    const scored = classificationMetrics(predictMlp(fitted.tf, params.model, fitted.weights, xTest, yTest.length), yTest, meta.classes);

    await saveMlp(fitted.tf, params.model, fitted.weights, ctx.outDir);
    await ctx.writeNpy('indices.npy', ndarray('int32', [state.indices.length], state.indices));
    await ctx.writeNpy('y.npy', ndarray('int32', [state.labels.length], state.labels));
    await ctx.writeJson('round.json', { round, labels: state.consumed, queried, pseudoLabels: pseudo.indices.length });
    // As an evaluate stage writes it, so the report draws a round's confusion matrix like any cell's.
    const evaluation: EvaluationFile = { split: 'test', samples: yTest.length, ...scored, ...(meta.classNames !== undefined ? { classNames: meta.classNames } : {}) };
    await ctx.writeJson('metrics.json', evaluation);
    return {
      metrics: {
        round,
        // Named as seed-labels names them, so results and the report read every cell's labels alike.
        samples: rows.length,
        trueLabelsUsed: state.consumed,
        labelAccuracy: (right(state.indices, state.labels) + pseudoRight) / rows.length,
        queried,
        pseudo_labels: pseudo.indices.length,
        pseudo_accuracy: pseudo.indices.length === 0 ? null : pseudoRight / pseudo.indices.length,
        accuracy: scored.accuracy,
        loss: scored.loss,
        epochs: fitted.epochs,
      },
      timings: { train: fitted.seconds },
      details: { ...(params.strategy !== undefined ? { strategy: params.strategy } : {}), backend: fitted.compute },
    };
  },
};
