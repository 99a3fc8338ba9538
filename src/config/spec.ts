import type { JsonValue } from '../util/json.js';
import type { SourceFile } from './source.js';

/** One stage as the user wrote it in the pipeline file. */
export interface StageSpec {
  /** A built-in stage type or a local module path (`./stages/x.js`). */
  readonly uses: string;
  /** The ids of the stages it consumes, in the order written. */
  readonly needs: readonly string[];
  /** The stage type's parameters, expressions unresolved. */
  readonly with: Readonly<Record<string, JsonValue>>;
  readonly description?: string;
  /** A folder (relative to the pipeline file) that `run` copies the stage's output files into. */
  readonly publish?: string;
  /** Repeat the stage in rounds, each reading the previous round's output: a count, or `${{ params.NAME }}` as written. */
  readonly rounds?: number | string;
}

/** The matrix as written: axes with their values, and the include/exclude lists. */
export interface MatrixSpec {
  readonly axes: Readonly<Record<string, readonly JsonValue[]>>;
  readonly include: readonly Readonly<Record<string, JsonValue>>[];
  readonly exclude: readonly Readonly<Record<string, JsonValue>>[];
  /** Axes written as `"${{ params.NAME }}"`: the param each reads its values from (after `--set`). */
  readonly fromParams?: Readonly<Record<string, string>>;
  /** Params swept from the command line (`--set epochs=1,2`): each is an axis of its name, and `${{ params.NAME }}` reads it. */
  readonly sweptParams?: readonly string[];
}

/** A pipeline file as the user wrote it, checked against the pipeline schema. */
export interface PipelineSpec {
  readonly name: string;
  readonly description?: string;
  readonly params: Readonly<Record<string, JsonValue>>;
  readonly matrix: MatrixSpec;
  /** The replicates' seeds (`replicates: 10` is seeds 1 to 10), read as `${{ replicate.seed }}`; absent: no replicates. */
  readonly replicates?: readonly number[];
  readonly stages: Readonly<Record<string, StageSpec>>;
}

/** A parsed pipeline with the source it came from, for locating problems. */
export interface LoadedPipeline {
  readonly spec: PipelineSpec;
  readonly source: SourceFile;
}
