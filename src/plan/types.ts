import type { KeyRecord } from '../cache/key.js';
import type { JsonObject, JsonValue } from '../util/json.js';
import type { Combination } from './matrix.js';

/** Where a stage type's code lives, so a worker process can load it. */
export type StageSource =
  | { readonly kind: 'builtin'; readonly name: string }
  /** A local module: where the planning process found it, and the SHA-256 of its code, so a runner refuses other code. */
  | { readonly kind: 'module'; readonly path: string; readonly sha256: string };

/** What a stage type's output is to the views: `evaluation` instances are the grid's cells, `training` ones hold `history.json`. */
export const STAGE_ROLES = ['evaluation', 'training', 'labelling'] as const;
/** A stage type's role. */
export type StageRole = (typeof STAGE_ROLES)[number];

/**
 * An input a stage type cannot run without: one of its `needs` must be a stage
 * of one of these types. `validate` and `plan` check it, so a wiring mistake is
 * a located diagnostic before anything runs, not a failure after hours of work.
 */
export interface InputRequirement {
  /** The stage types (`uses`) any one of which satisfies it, such as `['split']`. */
  readonly types: readonly string[];
  /** Why the input is needed, for the message: `evaluate measures the model on a split's test set`. */
  readonly why: string;
  /** Only when each named parameter (after defaults) has one of the listed values, such as `{ strategy: ['full', 'part'] }`. */
  readonly when?: Readonly<Record<string, readonly JsonValue[]>>;
}

/** What the planner needs to know of a stage type (never its code). */
export interface StageTypeInfo {
  readonly name: string;
  readonly version: string | number;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly gather: boolean;
  readonly heavy: boolean;
  readonly numeric: boolean;
  /** What its instances are to `results` and the report, or null. */
  readonly role: StageRole | null;
  /** The type reads external files (its `files` hook), whose hashes go into the key. */
  readonly readsFiles: boolean;
  /** Parameters left out of the key because they cannot change the output. */
  readonly untracked: readonly string[];
  /** The inputs it cannot run without, checked against `needs` before a run. */
  readonly requires: readonly InputRequirement[];
  /** Which parameters each round reads, for a type made to repeat in rounds. */
  readonly roundParams?: RoundParams;
  readonly source: StageSource;
}

/**
 * How the rounds of a stage type made to repeat read its parameters, so that
 * each round's key holds only what that round reads: round 1, with no
 * previous round to act on, ignores `firstIgnores`; round r ≥ 2 reads entry
 * r − 2 of each `perRound` parameter given as a list (the last entry repeating).
 */
export interface RoundParams {
  readonly firstIgnores?: readonly string[];
  readonly perRound?: readonly string[];
}

/** A stage after matrix expansion: one cell of one stage, parameters resolved. */
export interface StageInstance {
  /** Unique and readable: `train` or `train[k=10 seeding.strategy=full]`. */
  readonly id: string;
  /** The stage's id in the pipeline. */
  readonly stage: string;
  readonly type: StageTypeInfo;
  /** Values of the axes this instance is expanded over (only those). */
  readonly matrix: Combination;
  /** `with`, expressions substituted and schema defaults applied. */
  readonly params: JsonObject;
  /** For each need, the ids of the instances it consumes (several for a gathering stage). */
  readonly needs: Readonly<Record<string, readonly string[]>>;
}

/** A stage instance with its cache key. */
export interface KeyedInstance extends StageInstance {
  readonly key: string;
  readonly record: KeyRecord;
  /** Paths of the external files it reads (their hashes are in the record). */
  readonly files: readonly string[];
}

/** The expanded pipeline: every stage instance, dependencies first. */
export interface Expansion {
  readonly name: string;
  readonly params: Readonly<Record<string, JsonValue>>;
  /** Stage ids, dependencies first. */
  readonly stages: readonly string[];
  /** The matrix axes each stage is expanded over. */
  readonly axes: Readonly<Record<string, readonly string[]>>;
  /** The number of rounds of each stage that declares `rounds:`. */
  readonly rounds: Readonly<Record<string, number>>;
  readonly instances: readonly StageInstance[];
}

/** A pipeline ready to run: every instance keyed, dependencies first. */
export interface Plan {
  readonly name: string;
  /** The TensorFlow backend numeric stages will run on ('none' when the pipeline has none). */
  readonly backend: string;
  readonly stages: readonly string[];
  readonly axes: Readonly<Record<string, readonly string[]>>;
  readonly instances: readonly KeyedInstance[];
}
