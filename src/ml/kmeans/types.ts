import type { ThreadErrorReply } from '../thread-channel.js';

/** How the initial centres are chosen when they are not given explicitly. */
export const KMEANS_INITS = ['k-means++', 'random'] as const;

/** An initialisation method's name. */
export type KMeansInit = (typeof KMEANS_INITS)[number];

/**
 * How the iterations find the nearest centres: `lloyd` computes every
 * point's distance to every centre each iteration; `hamerly` keeps two
 * bounds per point (its centre, the second-nearest) and recomputes only the
 * points whose nearest centre may have changed; `elkan` keeps a lower bound
 * per point and centre (n*k values), which settles more points when the
 * centres are many and move unevenly. All give the same assignments (up to
 * float ties). `auto` picks `lloyd` where products are native (ONNX Runtime or
 * native TensorFlow: the bounds' bookkeeping then costs more than the
 * products it saves) and `elkan` on the wasm backend's own products.
 *
 * `reference` runs the `ml-kmeans` package from the same seeded starts to its
 * fixed point (the tolerance is not used): slow, for cross-checking on small data.
 */
export const KMEANS_ALGORITHMS = ['auto', 'hamerly', 'elkan', 'lloyd', 'reference'] as const;

/** An iteration algorithm's name. */
export type KMeansAlgorithm = (typeof KMEANS_ALGORITHMS)[number];

/** Options of {@link kmeans}. */
export interface KMeansOptions {
  /** Number of clusters, at least 1 and at most the number of points. */
  readonly k: number;
  /**
   * Explicit initial centres (k*d, row-major), or the method that picks them
   * (default `k-means++`). Explicit centres imply a single run.
   */
  readonly init?: Float32Array | KMeansInit;
  /** Independent runs from different initialisations; the lowest inertia wins. Default 1. */
  readonly nInit?: number;
  /** Maximum Lloyd iterations per run. Default 300. */
  readonly maxIter?: number;
  /**
   * Convergence tolerance, relative like scikit-learn's: a run stops when the
   * squared shifts of the centres, summed, are at most `tol` times the mean
   * per-feature variance of the data. Default 1e-4.
   */
  readonly tol?: number;
  /** Seed of every random choice. Default 0. */
  readonly seed?: number;
  /**
   * Threads sharing the distance and centre-sum work; each extra one is a
   * worker thread with its own TensorFlow.js backend. Default 1.
   */
  readonly threads?: number;
  /** Rows per tensor chunk: bounds the memory of the n x k distance products. Default 4096. */
  readonly chunkRows?: number;
  /** At most this many points (a seeded sample) are used by k-means++. Default 20000. */
  readonly initSampleSize?: number;
  /** How the nearest centres are found each iteration (see {@link KMEANS_ALGORITHMS}). Default `auto`. */
  readonly algorithm?: KMeansAlgorithm;
  /**
   * Called after each Lloyd iteration with the inertia against the centres it
   * started from (with the bounded algorithms, computed from the cluster sums).
   */
  readonly onIteration?: (iteration: number, inertia: number, run: number) => void;
  /** Stops the work between iterations, rejecting with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The outcome of {@link kmeans}: the best run. */
export interface KMeansResult {
  /** Final centres, k*d row-major. */
  readonly centers: Float32Array;
  /** The centre each point belongs to (the nearest final centre). */
  readonly assignment: Int32Array;
  /** Euclidean distance of each point to its centre. */
  readonly distances: Float32Array;
  /** Sum of squared distances of the points to their centres. */
  readonly inertia: number;
  /** Lloyd iterations the best run took. */
  readonly iterations: number;
  /**
   * Rows whose distances to every centre were computed, summed over the
   * iterations of the best run (n per iteration for `lloyd`): the work the
   * bounds saved.
   */
  readonly scoredRows: number;
}

export const DEFAULTS = { nInit: 1, maxIter: 300, tol: 1e-4, seed: 0, threads: 1, chunkRows: 4096, initSampleSize: 20000, algorithm: 'auto' } as const;

/** The operands and options of one assignment step on a block of rows. */
export interface StepParams {
  /** The centres transposed, d x k, and multiplied by -2. */
  readonly centersT: Float32Array;
  /** |c|^2 of each centre. */
  readonly centerNorms: Float32Array;
  readonly k: number;
  /** Also sum the rows of each cluster (the update step); only with every row. */
  readonly withSums: boolean;
  /** Also return the second-smallest score of each row (the bounds of `hamerly` need it). */
  readonly withSecond: boolean;
  /** Also return every score of each row (the bounds of `elkan` need them). */
  readonly withAll: boolean;
  /** Only these rows (ascending indices within the block), or every row when null. */
  readonly rows: Int32Array | null;
  /** Bounded algorithms: keep or use the shard's distance bounds (see {@link BoundsParams}). */
  readonly bounds?: BoundsParams;
}

/**
 * What a shard needs to keep and use distance bounds on its rows. With
 * `reset`, the step scores every row and sets the bounds from the scores;
 * with `check`, it first applies the given relabelling and centre moves to
 * the bounds, then scores only the rows the bounds cannot settle.
 */
export interface BoundsParams {
  readonly mode: 'reset' | 'check';
  /** Elkan's per-centre lower bounds rather than Hamerly's single one. */
  readonly perCentre: boolean;
  /** The centres (k*d), to tighten upper bounds with exact distances. */
  readonly centers: Float32Array;
  /** Half the distance from each centre to its nearest other centre. */
  readonly half: Float64Array;
  /** A score's rounding error is at most errorScale * (|x|^2 + centerMax). */
  readonly errorScale: number;
  readonly centerMax: number;
  /** How far each centre moved since the bounds were last used. */
  readonly moves: Float64Array | null;
  /** Rows (block indices) given a new label outside the steps, with the label: pairs. */
  readonly relabel: Int32Array | null;
}

/** What one Lloyd step on a block of rows produces. */
export interface StepOutput {
  /** Nearest centre of each row. */
  readonly labels: Int32Array;
  /** min over centres of |c|^2 - 2 x.c: the squared distance without the |x|^2 term. */
  readonly scores: Float32Array;
  /** The second-smallest such score of each row, when asked for (Infinity when k is 1). */
  readonly seconds: Float32Array | null;
  /** Every score |c|^2 - 2 x.c of each row (rows x k), when asked for. */
  readonly all: Float32Array | null;
  /** Per-cluster sums of the rows (k*d), when asked for. */
  readonly sums: Float64Array | null;
  /** Per-cluster row counts, when sums are asked for. */
  readonly counts: Int32Array | null;
  /** Rows scored against every centre. */
  readonly scoredRows: number;
}

/** Messages between {@link kmeans} and its worker threads. */
export type ShardRequest = { readonly type: 'step' } & StepParams;

/** A worker thread's answers. */
export type ShardReply =
  | { readonly type: 'ready' }
  | { readonly type: 'step'; readonly output: StepOutput }
  | ThreadErrorReply;

/** What a worker thread receives at start. */
export interface ShardInit {
  readonly points: Float32Array;
  readonly rows: number;
  readonly d: number;
  readonly chunkRows: number;
}

/** A block of rows [lo, hi) served either in-process or by a worker thread. */
export interface ShardHandle {
  readonly lo: number;
  readonly hi: number;
  step(params: StepParams): Promise<StepOutput>;
  close(): Promise<void>;
}

/** What every run of one {@link kmeans} call shares. */
export interface RunSetup {
  readonly shards: readonly ShardHandle[];
  readonly points: Float32Array;
  /** |x|^2 of each point. */
  readonly norms: Float64Array;
  readonly n: number;
  readonly d: number;
  readonly k: number;
  readonly maxIter: number;
  /** The absolute tolerance on the summed squared shift. */
  readonly tolerance: number;
  readonly options: KMeansOptions;
}

