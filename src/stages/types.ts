import type { JsonValue } from '../util/json.js';
import type { NdArray } from '../util/npy.js';
import type { InputRequirement, RoundParams, StageRole } from '../plan/types.js';
import type { LineageEntry } from '../cache/artifact.js';

/** One stored artifact, as a stage reads it from its inputs. */
export interface ArtifactReader {
  /** The artifact's cache key (hex SHA-256). */
  readonly key: string;
  /** The id of the stage that produced it. */
  readonly stage: string;
  /** The type (`uses`) of the stage that produced it, such as `kmeans`. */
  readonly type: string;
  /** The matrix values of the producing stage instance (only the axes it is expanded over). */
  readonly matrix: Readonly<Record<string, JsonValue>>;
  /** The folder holding the artifact's files. */
  readonly dir: string;
  /** What the producing stage's `run` returned, or null when it returned nothing (or a summary of an older shape). */
  readonly summary: StageSummary | null;
  /**
   * The summaries of every stage upstream of this artifact, by stage id (the
   * producing stage included), so a gathering stage can report, say, the
   * label accuracy of the seed set behind each evaluation.
   */
  readonly lineage: Readonly<Record<string, LineageEntry>>;
  /** The absolute path of one of the artifact's files. */
  path(name: string): string;
  /** Reads and parses one of the artifact's JSON files. */
  readJson<T = unknown>(name: string): Promise<T>;
  /** Reads one of the artifact's `.npy` files (give the name with its extension). */
  readNpy(name: string): Promise<NdArray>;
  /**
   * Reads an `.npy` file of images as float32 in [0, 1] (uint8 pixels scaled by 1/255; float32
   * features as they are), decoded once per process and shared: read it, never write to it.
   */
  readPixels(name: string): Promise<{ pixels: Float32Array; shape: readonly number[] }>;
}

/**
 * What a stage's `run` returns, kept in the artifact's manifest. Metrics and
 * timings are apart so that `results` and `compare` never guess which is which
 * from a name: metrics are the same on every execution of the same key,
 * timings are not.
 */
export interface StageSummary {
  /** The results, as `results` shows them (`evaluate.accuracy`); dotted names are allowed (`final.loss`). Null for a metric that has no value (the label accuracy of centres). */
  readonly metrics: Readonly<Record<string, number | null>>;
  /** Wall times in seconds, by what was timed (`train`, `total`). */
  readonly timings: Readonly<Record<string, number>>;
  /** Other facts worth a column, such as the backend's name or the strategy. */
  readonly details?: Readonly<Record<string, JsonValue>>;
}

export type { InputRequirement, LineageEntry };

/** The artifacts a stage instance consumes, by the id of the stage it `needs`. */
export interface StageInputs {
  /** The ids of the needs, in the order the pipeline lists them. */
  readonly ids: readonly string[];
  /**
   * The single input artifact produced by a stage of type `type` (such as
   * `split`), whatever the user named that stage. Throws a StageUserError
   * saying what to add to `needs` when there is none or more than one;
   * `why` (such as `strategy "part" labels through k-means clusters`) opens its message.
   */
  byType(type: string, why?: string): ArtifactReader;
  /** The single input made by a stage of type `type`, or null when none is; more than one is a StageUserError. */
  findType(type: string): ArtifactReader | null;
  /** The single artifact of need `id` (for a stage that does not gather). Throws if there is not exactly one. */
  one(id: string): ArtifactReader;
  /** Every artifact of need `id`: one per instance of that stage (a gathering stage gets them all). */
  all(id: string): readonly ArtifactReader[];
  /**
   * For a stage that repeats in rounds (`rounds:`), the artifact of the
   * previous round of the same instance; null in round 1 and for stages that
   * do not repeat. It is the only output of its own stage a round sees.
   */
  previousRound(): ArtifactReader | null;
}

/** Progress of a running stage, shown live and sent as `progress` events. */
export interface StageProgress {
  /** What is being counted: "iteration", "epoch", ... */
  readonly unit: string;
  readonly step: number;
  readonly total?: number;
  /** A few numbers worth showing, such as `{ loss: 0.41 }`. */
  readonly metrics?: Readonly<Record<string, number>>;
}

/** What the engine gives a running stage. */
export interface StageContext {
  /** An empty folder for this stage's files; the engine checksums and publishes it after `run` resolves. */
  readonly outDir: string;
  /** Aborted when the run is interrupted; long loops should check it. */
  readonly signal: AbortSignal;
  /** Which instance is running. */
  readonly instance: { readonly stage: string; readonly key: string; readonly matrix: Readonly<Record<string, JsonValue>> };
  /** Writes a JSON file into the output folder. */
  writeJson(name: string, value: unknown): Promise<void>;
  /** Writes an `.npy` file into the output folder (give the name with its extension). */
  writeNpy(name: string, array: NdArray): Promise<void>;
  /** Logs a line through the run's logger. */
  log(level: 'debug' | 'info' | 'warn', message: string): void;
  /** Reports progress (k-means iteration, training epoch...). */
  progress(progress: StageProgress): void;
  /** The external files the stage's `files` hook found when the run was planned (hashed into the key); empty without the hook. */
  readonly files: readonly string[];
}

/** Facts about the environment that a stage's `files` hook may use. */
export interface ResolveOptions {
  /** True for `seedflow run`: the hook may fetch missing files. False for `plan`, `validate` and `gc`. */
  readonly allowDownload: boolean;
  /** Logs a line through the command's logger. */
  readonly log: (level: 'info' | 'warn', message: string) => void;
  /** The folder of the pipeline file: relative paths in `with` are relative to it. */
  readonly baseDir: string;
}

/**
 * A problem with a stage's parameters or environment that the user must fix
 * (data not found, a file that cannot be read). The engine reports it as a
 * located diagnostic at the stage, never as a crash.
 */
export { StageUserError } from '../errors/user-error.js';

/**
 * A stage type: one module exports one of these (as `stage`). Keep heavy
 * libraries (TensorFlow) out of the module's top level and import them inside
 * `run`, so that `validate`, `plan` and a cached re-run never load them.
 */
export interface StageType<P = Record<string, unknown>> {
  /** The name used in `uses:`. */
  readonly name: string;
  /** Bump it whenever the stage's output for the same inputs changes: it is part of the cache key. */
  readonly version: string | number;
  /** One line for `seedflow schema` and the README. */
  readonly description?: string;
  /** JSON Schema (draft-07) of `with`; defaults in it are applied before the key is computed. */
  readonly schema: Readonly<Record<string, unknown>>;
  /** A gathering stage is not expanded over its needs' matrix axes: it receives every instance of each need. */
  readonly gather?: boolean;
  /** CPU-heavy: run in a worker process, so that several can use several cores. */
  readonly heavy?: boolean;
  /** Numeric: the TensorFlow backend's name is part of the cache key. */
  readonly numeric?: boolean;
  /** What its output is to `results` and the report; most stage types have none. */
  readonly role?: StageRole;
  /**
   * Parameters that cannot change the output (a thread count): left out of
   * the cache key, so changing them never reruns the stage.
   */
  readonly untracked?: readonly string[];
  /**
   * For a type made to repeat in rounds: which parameters each round reads
   * (round 1 ignores `firstIgnores`; round r ≥ 2 gets entry r − 2 of each
   * `perRound` list). The planner hands each round only those, and keys it on them.
   */
  readonly roundParams?: RoundParams;
  /**
   * The inputs it cannot run without (`{ types: ['split'], why }`, optionally
   * `when` some parameter has some value): `validate` reports a stage whose
   * `needs` lack one, at the stage, before anything runs.
   */
  readonly requires?: readonly InputRequirement[];
  /**
   * External files the stage will read, given its parameters; their content
   * hashes become part of the cache key. Throw StageUserError when they
   * cannot be found.
   */
  files?(params: P, options: ResolveOptions): Promise<readonly string[]>;
  /** Does the work, writing files into `ctx.outDir`; the returned summary is kept in the artifact's manifest. */
  run(inputs: StageInputs, params: P, ctx: StageContext): Promise<StageSummary | void>;
}
