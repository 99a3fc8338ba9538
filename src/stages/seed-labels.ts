import { ndarray } from '../util/npy.js';
import { Random } from '../util/random.js';
import { readArray } from './inputs.js';
import type { ArtifactReader, StageSummary, StageType } from './types.js';
import { StageUserError } from './types.js';

/** How a seed set of labelled training images is chosen. */
export const SEED_STRATEGIES = ['full', 'part', 'centers', 'representatives', 'typical', 'random', 'all'] as const;
/** A seed strategy's name. */
export type SeedStrategy = (typeof SEED_STRATEGIES)[number];

/** The strategies that label through k-means clusters and so need a `kmeans` input. */
export const CLUSTER_STRATEGIES: readonly SeedStrategy[] = ['full', 'part', 'centers', 'representatives', 'typical'];

/** The `with` block of a `seed-labels` stage. */
export interface SeedLabelsParams {
  /**
   * `full`: every training image, labelled with its cluster's label.
   * `part`: the `percent`% of each cluster nearest its centre, labelled with the cluster's label.
   * `centers`: the cluster centres, labelled with their representative's label.
   * `representatives`: the image nearest each centre, with its true label.
   * `typical`: the most typical image of each cluster (TypiClust), with its true label.
   * `random`: `n` random training images with their true labels.
   * `all`: every training image with its true label.
   */
  readonly strategy: SeedStrategy;
  /** For `part`: the share of each cluster kept, in percent (0 < percent <= 100). */
  readonly percent?: number;
  /** For `random`: how many images. */
  readonly n?: number;
  /** For `random`: the seed of the draw. */
  readonly seed: number;
  /** For `typical`: the neighbours whose mean distance measures density (default 20, as TypiClust). */
  readonly neighbors?: number;
  /** For `typical`: clusters of this many images or fewer are left out (default 5, as TypiClust). */
  readonly min_cluster_size?: number;
}

/** The summary a `seed-labels` stage returns. */
export interface SeedLabelsSummary extends StageSummary {
  readonly metrics: {
    /** Number of labelled samples produced. */
    readonly samples: number;
    /** How many true labels the strategy had to look up (the labelling cost). */
    readonly trueLabelsUsed: number;
    /** Share of the produced labels equal to the images' true labels; null for centres, which are not images. */
    readonly labelAccuracy: number | null;
    /** Number of clusters of the kmeans input, or null when the strategy uses none. */
    readonly clusters: number | null;
  };
  readonly timings: Record<string, never>;
  readonly details: { readonly strategy: SeedStrategy };
}

function summary(strategy: SeedStrategy, samples: number, trueLabelsUsed: number, labelAccuracy: number | null, clusters: number | null): SeedLabelsSummary {
  return { metrics: { samples, trueLabelsUsed, labelAccuracy, clusters }, timings: {}, details: { strategy } };
}

/** The clusters of a kmeans artifact as seed-labels reads them. */
export interface Clusters {
  readonly k: number;
  readonly d: number;
  readonly centers: Float32Array;
  readonly assignment: Int32Array;
  readonly distances: Float32Array;
}

export async function readClusters(kmeans: ArtifactReader): Promise<Clusters> {
  const centers = await readArray(kmeans, 'centers.npy', 'float32', ['*', '*']);
  const [k = 0, d = 0] = centers.shape;
  const assignment = (await readArray(kmeans, 'assignment.npy', 'int32', ['*'])).data;
  const distances = (await readArray(kmeans, 'distances.npy', 'float32', ['*'])).data;
  return { k, d, centers: centers.data, assignment, distances };
}

/**
 * The representative of each cluster: the member nearest its centre (the
 * lowest index on a tie), or -1 for an empty cluster.
 */
export function representatives(assignment: Int32Array, distances: Float32Array, k: number): Int32Array {
  const best = new Int32Array(k).fill(-1);
  const bestDistance = new Float64Array(k).fill(Infinity);
  for (let i = 0; i < assignment.length; i++) {
    const j = assignment[i] as number;
    const dist = distances[i] as number;
    if (dist < (bestDistance[j] as number)) {
      best[j] = i;
      bestDistance[j] = dist;
    }
  }
  return best;
}

/**
 * For each cluster, the ceil(percent% of its size) members nearest its
 * centre (at least one), cluster by cluster, nearest first.
 */
export function nearestShare(assignment: Int32Array, distances: Float32Array, k: number, percent: number): Int32Array {
  const members: number[][] = Array.from({ length: k }, () => []);
  assignment.forEach((j, i) => members[j]?.push(i));
  const chosen: number[] = [];
  for (const list of members) {
    if (list.length === 0) continue;
    list.sort((a, b) => (distances[a] as number) - (distances[b] as number) || a - b);
    // The slack keeps 2.2% of 1500 at 33: in floating point 2.2 * 1500 / 100 is 33.00000000000001.
    const take = Math.max(1, Math.ceil((percent * list.length) / 100 - 1e-9));
    chosen.push(...list.slice(0, take));
  }
  return Int32Array.from(chosen);
}

/**
 * Each image's typicality as TypiClust (Hacohen et al., ICML 2022) measures
 * it: the inverse of the mean Euclidean distance to its `neighbors` nearest
 * neighbours (+1e-5), read from the kNN graph of the whole training set.
 */
export function typicality(graph: { readonly distances: Float32Array; readonly k: number }, n: number, neighbors: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let m = 0; m < neighbors; m++) sum += graph.distances[i * graph.k + m] as number;
    out[i] = 1 / (sum / neighbors + 1e-5);
  }
  return out;
}

/**
 * The most typical member of each cluster, as TypiClust picks it (see
 * {@link typicality}); clusters of `minSize` images or fewer are left out;
 * ties go to the lower index. Cluster by cluster.
 */
export function typicalPicks(assignment: Int32Array, k: number, graph: { readonly indices: Int32Array; readonly distances: Float32Array; readonly k: number }, neighbors: number, minSize: number): Int32Array {
  const sizes = new Int32Array(k);
  for (const j of assignment) sizes[j] = (sizes[j] as number) + 1;
  const scores = typicality(graph, assignment.length, neighbors);
  const best = new Int32Array(k).fill(-1);
  const bestScore = new Float64Array(k).fill(-Infinity);
  for (let i = 0; i < assignment.length; i++) {
    const j = assignment[i] as number;
    if ((sizes[j] as number) <= minSize) continue;
    const score = scores[i] as number;
    if (score > (bestScore[j] as number)) {
      best[j] = i;
      bestScore[j] = score;
    }
  }
  return best.filter((row) => row >= 0);
}

function accuracy(indices: Int32Array, labels: Int32Array, truth: Int32Array): number {
  if (indices.length === 0) return 0;
  let right = 0;
  indices.forEach((row, i) => {
    if (labels[i] === truth[row]) right++;
  });
  return right / indices.length;
}

/**
 * Chooses the labelled seed set of a semi-supervised experiment: through
 * k-means clusters (each cluster takes the true label of the image nearest
 * its centre), at random, or all of it. Writes `y.npy` with `indices.npy`
 * (rows of x_train) or, for `centers`, `x.npy` (features scaled to [0, 1]).
 */
export const stage: StageType<SeedLabelsParams> = {
  name: 'seed-labels',
  version: 2,
  requires: [
    { types: ['split'], why: 'seed-labels reads the training labels of a split' },
    { types: ['kmeans'], why: 'this strategy labels through k-means clusters', when: { strategy: CLUSTER_STRATEGIES } },
    { types: ['knn-graph'], why: 'strategy "typical" measures density on a kNN graph', when: { strategy: ['typical'] } },
  ],
  role: 'labelling',
  description: 'Chooses the labelled training images (or centres) that seed a classifier, labelling them through k-means clusters or at random.',
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    required: ['strategy'],
    properties: {
      strategy: {
        description:
          'full: every image with its cluster\'s label; part: the percent% of each cluster nearest its centre, with the cluster\'s label; ' +
          'centers: the centres with their representative\'s label; representatives: the image nearest each centre with its true label; ' +
          'typical: the most typical image of each cluster (TypiClust: densest by its kNN-graph neighbours) with its true label; ' +
          'random: n random images with their true labels; all: every image with its true label.',
        enum: [...SEED_STRATEGIES],
      },
      percent: { description: 'For part: the share of each cluster kept, in percent (rounded up, at least one image per cluster).', type: 'number', exclusiveMinimum: 0, maximum: 100 },
      n: { description: 'For random: the number of images drawn.', type: 'integer', minimum: 1 },
      seed: { description: 'For random: the seed of the draw.', type: 'integer', default: 0 },
      neighbors: { description: 'For typical: the nearest neighbours whose mean distance measures density (20 when not given, as in TypiClust); at most the kNN graph\'s k.', type: 'integer', minimum: 1 },
      min_cluster_size: { description: 'For typical: clusters of this many images or fewer are left out (5 when not given, as in TypiClust).', type: 'integer', minimum: 0 },
    },
    allOf: [
      { if: { properties: { strategy: { const: 'part' } }, required: ['strategy'] }, then: { required: ['percent'] } },
      { if: { properties: { strategy: { const: 'random' } }, required: ['strategy'] }, then: { required: ['n'] } },
    ],
  },
  async run(inputs, params, ctx): Promise<SeedLabelsSummary> {
    const { strategy } = params;
    const split = inputs.byType('split', 'seed-labels reads the training labels of a split');
    const truth = (await readArray(split, 'y_train.npy', 'int32', ['*'])).data;
    const n = truth.length;
    const write = async (indices: Int32Array, labels: Int32Array, trueLabelsUsed: number, clusters: number | null): Promise<SeedLabelsSummary> => {
      await ctx.writeNpy('indices.npy', ndarray('int32', [indices.length], indices));
      await ctx.writeNpy('y.npy', ndarray('int32', [labels.length], labels));
      return summary(strategy, indices.length, trueLabelsUsed, accuracy(indices, labels, truth), clusters);
    };

    if (strategy === 'all') return write(Int32Array.from({ length: n }, (_, i) => i), Int32Array.from(truth), n, null);
    if (strategy === 'random') {
      const m = params.n;
      if (m === undefined) throw new StageUserError('strategy "random" needs n, the number of images to draw');
      if (m > n) throw new StageUserError(`n is ${m} but the training set has only ${n} images`, `choose n at most ${n}`);
      const indices = new Random(params.seed).permutation(n).slice(0, m).sort();
      return write(indices, indices.map((row) => truth[row] as number), m, null);
    }

    const clusters = await readClusters(inputs.byType('kmeans', `strategy "${strategy}" labels through k-means clusters`));
    const { k, assignment, distances } = clusters;
    if (assignment.length !== n || distances.length !== n) {
      throw new StageUserError(
        `the kmeans input clustered ${assignment.length} images but the split has ${n} training images`,
        'make the kmeans stage need the same split as this stage',
      );
    }
    const reps = representatives(assignment, distances, k);
    const clusterLabel = reps.map((row) => (row < 0 ? -1 : (truth[row] as number)));
    const kept = reps.filter((row) => row >= 0);
    if (kept.length < k) ctx.log('warn', `${k - kept.length} of ${k} clusters are empty and label nothing`);

    switch (strategy) {
      case 'full':
        return write(Int32Array.from({ length: n }, (_, i) => i), assignment.map((j) => clusterLabel[j] as number), kept.length, k);
      case 'part': {
        const percent = params.percent;
        if (percent === undefined) throw new StageUserError('strategy "part" needs percent, the share of each cluster to keep');
        const indices = nearestShare(assignment, distances, k, percent);
        return write(indices, indices.map((row) => clusterLabel[assignment[row] as number] as number), kept.length, k);
      }
      case 'representatives':
        return write(kept, kept.map((row) => truth[row] as number), kept.length, k);
      case 'typical': {
        const graphInput = inputs.byType('knn-graph', 'strategy "typical" measures density on a kNN graph');
        const graphIndices = await readArray(graphInput, 'indices.npy', 'int32', [n, '*']);
        const graphK = graphIndices.shape[1] ?? 0;
        const graphDistances = (await readArray(graphInput, 'distances.npy', 'float32', [n, graphK])).data;
        const neighbors = params.neighbors ?? 20;
        if (neighbors > graphK) throw new StageUserError(`neighbors is ${neighbors} but the kNN graph of ${graphInput.stage} keeps ${graphK}`, `choose neighbors at most ${graphK}, or raise the graph's k`);
        const picks = typicalPicks(assignment, k, { indices: graphIndices.data, distances: graphDistances, k: graphK }, neighbors, params.min_cluster_size ?? 5);
        if (picks.length < k) ctx.log('info', `${k - picks.length} of ${k} clusters are too small for a typical pick`);
        return write(picks, picks.map((row) => truth[row] as number), picks.length, k);
      }
      case 'centers': {
        const { d, centers } = clusters;
        const x = new Float32Array(kept.length * d);
        const labels = new Int32Array(kept.length);
        let m = 0;
        reps.forEach((row, j) => {
          if (row < 0) return;
          x.set(centers.subarray(j * d, j * d + d), m * d);
          labels[m++] = clusterLabel[j] as number;
        });
        await ctx.writeNpy('x.npy', ndarray('float32', [m, d], x));
        await ctx.writeNpy('y.npy', ndarray('int32', [m], labels));
        return summary(strategy, m, m, null, k);
      }
    }
  },
};
