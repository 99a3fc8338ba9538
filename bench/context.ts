/**
 * What every part of the bench shares: the options of the run, the targets of
 * the issue, the images, the Python peers, and small formatting helpers.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrainingImages, writeBenchData, type BenchData } from './data.js';
import type { PythonInfo } from './python.js';
import type { Section, SectionResult } from './report.js';

/** The repository's root folder. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The targets. */
export const TARGETS = {
  /** k-means time per iteration against scikit-learn's, same threads. */
  kmeans: 1.5,
  /** One MLP epoch against PyTorch's, same threads. */
  mlp: 2,
  /** `--jobs 2` wall time against `--jobs 1`. */
  jobs: 0.6,
  /** Peak memory of one worker, in MB (1.5 GB). */
  workerMb: 1536,
  /** A fully cached re-run against `validate`. */
  cache: 1.5,
} as const;

/** Relative agreement required of the two final inertias. */
export const INERTIA_TOLERANCE = 1e-3;
/** The numbers of clusters compared. */
export const KS = [50, 100] as const;
/** The thread counts compared. */
export const THREADS = [1, 2] as const;
/** The MLP's batch size, as in the experiment. */
export const BATCH = 2000;
/** Seeds the initial centres, the initial weights and the shuffles. */
export const SEED = 42;

/** The MLP's first layer at batch 2000, the largest product of training. */
export const FIRST_LAYER = { m: BATCH, k: 784, n: 300 } as const;

/** What this run measures, and how big. */
export interface BenchOptions {
  readonly sections: readonly Section[];
  readonly quick: boolean;
  readonly write: boolean;
  readonly pipeline: string;
  readonly python: string;
  /** Training images for k-means and the MLP. */
  readonly rows: number;
  readonly iterations: number;
  readonly epochs: number;
  /** Runs of each command in the cached re-run comparison (the median counts). */
  readonly repeats: number;
  /** Runs of the pipeline per --jobs value (the fastest counts). */
  readonly pipelineRepeats: number;
  /** `--set` overrides of the pipeline runs. */
  readonly sets: readonly string[];
  /** Profile k-means and the MLP even when they meet their targets. */
  readonly profile: boolean;
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Prints a progress or result line. */
export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** A mistake on the command line: reported without a stack. */
export class UsageError extends Error {}

/** State shared by the parts of one bench run. */
export class BenchContext {
  private data: Promise<BenchData> | undefined;
  private dataFiles: Promise<{ x: string; y: string }> | undefined;
  /** A store the pipeline part filled, which the cache part re-runs against. */
  filledStore: string | undefined;
  /** True once a correctness check failed: the bench then exits non-zero. */
  failed = false;

  constructor(readonly options: BenchOptions, readonly dir: string, readonly python: PythonInfo | { readonly missing: string }) {}

  /** The images, read once. */
  images(): Promise<BenchData> {
    this.data ??= loadTrainingImages(this.options.rows);
    return this.data;
  }

  /** The images as `.npy` files for the peers, written once. */
  imageFiles(): Promise<{ x: string; y: string }> {
    this.dataFiles ??= (async () => {
      const files = { x: join(this.dir, 'x.npy'), y: join(this.dir, 'y.npy') };
      await writeBenchData(await this.images(), files.x, files.y);
      return files;
    })();
    return this.dataFiles;
  }

  /** A short "scikit-learn missing" for the table when a peer library cannot be used, or null when it can. */
  peerMissing(library: 'sklearn' | 'torch'): string | null {
    return this.whyMissing(library) === null ? null : `${library === 'sklearn' ? 'scikit-learn' : 'PyTorch'} missing`;
  }

  /** Why a peer library cannot be used, or null when it can. */
  whyMissing(library: 'sklearn' | 'torch'): string | null {
    const info = this.python;
    if ('missing' in info) return `${this.options.python} cannot be run (${info.missing})`;
    if (info[library] !== null) return null;
    const name = library === 'sklearn' ? 'scikit-learn' : 'PyTorch';
    return `${name} cannot be imported by ${this.options.python} (${(library === 'sklearn' ? info.sklearnError : info.torchError) ?? 'unknown reason'})`;
  }
}

/** "1 thread", "2 threads". */
export function threadWord(t: number): string {
  return `${t} thread${t === 1 ? '' : 's'}`;
}

/** What a part returns; the runner adds the load it measured under. */
export type PartResult = Omit<SectionResult, 'load'>;

/** One part of the bench. */
export type Part = (ctx: BenchContext) => Promise<PartResult>;

/** The part of each section. */
export type Parts = Readonly<Record<Section, Part>>;
