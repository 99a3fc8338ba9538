/**
 * What the bench runner asks a measuring child process to do, and what the
 * child answers. Each seedflow measurement runs in a fresh process so that
 * its peak memory is its own and no backend state carries over.
 */
import type { KMeansAlgorithm } from '../src/ml/kmeans/kmeans.js';
import type { MlpSpec } from '../src/ml/mlp/index.js';
import { DEFAULT_MODEL } from '../src/stages/train.js';

/** Time k-means from given initial centres for a fixed number of Lloyd iterations. */
export interface KMeansJob {
  readonly kind: 'kmeans';
  /** The first `n` training images are clustered. */
  readonly n: number;
  readonly k: number;
  /** A float32 `.npy` file of k x 784 initial centres. */
  readonly centresFile: string;
  readonly iterations: number;
  readonly threads: number;
  /** How the iterations find the nearest centres; seedflow's default when absent. */
  readonly algorithm?: KMeansAlgorithm;
}

/** Time training epochs of the 784-300-100-10 MLP. */
export interface MlpJob {
  readonly kind: 'mlp';
  readonly n: number;
  readonly epochs: number;
  readonly batchSize: number;
  /** Seeds the initial weights (the same ones the PyTorch peer loads) and the shuffles. */
  readonly seed: number;
  /** Threads sharing each batch; 1 when absent. */
  readonly threads?: number;
}

/**
 * Where the time of a k-means or MLP run goes, one thread: TensorFlow.js's
 * profiler times every kernel; the rest of the wall time is JavaScript and
 * copies in and out of the backend.
 */
export interface ProfileJob {
  readonly kind: 'profile';
  /** The measurement to profile; its `threads` must be 1. */
  readonly of: KMeansJob | MlpJob;
}

/**
 * A fixed amount of matrix products on the backend: the speed floor of the
 * matrix-product-bound work next to NumPy's, and, run alone and then as two
 * processes at once, how much a second core really adds here.
 */
export interface CalibrateJob {
  readonly kind: 'calibrate';
  /** The product is [m, k] by [k, n]. */
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** How many products to compute. */
  readonly products: number;
}

/** Time the features stage's PCA and the kNN graph on its output and on the pixels. */
export interface FeaturesJob {
  readonly kind: 'features';
  readonly n: number;
  readonly components: number;
  readonly neighbours: number;
  /** Where to write the kNN graph of the pixels (int32 n x neighbours), for the peer's check. */
  readonly indicesFile: string;
}

/** What the features measurement found. */
export interface FeaturesFigures {
  readonly kind: 'features';
  readonly fitS: number;
  readonly projectS: number;
  /** Share of the variance the components explain. */
  readonly explained: number;
  readonly knnFeaturesS: number;
  readonly knnPixelsS: number;
  readonly peakRssMb: number;
  readonly backend: string;
}

/** A measurement for the child process. */
export type BenchJob = KMeansJob | MlpJob | ProfileJob | CalibrateJob | FeaturesJob;

/** What a k-means measurement found. */
export interface KMeansFigures {
  readonly kind: 'kmeans';
  /** Lloyd iterations run. */
  readonly iterations: number;
  /**
   * Mean time of one iteration, the first one excluded (it pays for warm-up,
   * and the bounded algorithms score every row in it), like the peer's
   * (fit of N iterations − fit of 1) / (N − 1).
   */
  readonly perIterationS: number;
  /** Rows scored against every centre, in passes over all n rows (one per iteration for Lloyd, plus the final assignment). */
  readonly scoredPasses: number;
  /** The whole call, from the points in memory to the final assignment. */
  readonly totalS: number;
  /** Sum of squared distances to the final centres, in double precision. */
  readonly inertia: number;
  readonly peakRssMb: number;
  readonly backend: string;
}

/** What an MLP measurement found. */
export interface MlpFigures {
  readonly kind: 'mlp';
  /** Wall time of each epoch. */
  readonly epochSeconds: readonly number[];
  /** Mean training loss of each epoch. */
  readonly losses: readonly number[];
  readonly peakRssMb: number;
  readonly backend: string;
}

/** The time of one kernel (with given input shapes), summed over its calls. */
export interface KernelTime {
  readonly kernel: string;
  /** Input shapes, such as "[2000,784] [784,300]". */
  readonly shapes: string;
  readonly calls: number;
  readonly ms: number;
}

/** What a profile found. */
export interface ProfileFigures {
  readonly kind: 'profile';
  /** Wall time of the profiled call (profiling adds a little). */
  readonly wallMs: number;
  /** Kernels by time, largest first. */
  readonly kernels: readonly KernelTime[];
}

/** How long the calibration work took. */
export interface CalibrateFigures {
  readonly kind: 'calibrate';
  readonly seconds: number;
}

/** A child's answer. */
export type BenchFigures = KMeansFigures | MlpFigures | ProfileFigures | CalibrateFigures | FeaturesFigures;

/** Marks the child's answer line on stdout, apart from anything libraries print. */
export const RESULT_PREFIX = 'BENCH-RESULT ';

/** The MLP of the experiment: the train stage's default, the report's model. */
export const BENCH_MODEL: MlpSpec = DEFAULT_MODEL;

/** The learning rate of the experiment's Adam. */
export const LEARNING_RATE = 0.001;
