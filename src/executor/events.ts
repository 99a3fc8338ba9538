import type { StageProgress } from '../stages/types.js';
import type { JsonValue } from '../util/json.js';
import type { Failure } from './failure.js';

/**
 * How an instance's execution ended: `done`; `cached` (another run on the store computed it
 * while this one waited: its artifact is used); `failed` (it ran, or was refused, and failed);
 * `skipped` (never started: a dependency failed or the run was stopping); `interrupted`.
 * Every end but `done` and `cached` carries a Failure saying why.
 */
export type EndStatus = 'done' | 'cached' | 'failed' | 'interrupted' | 'skipped';

/**
 * The events of `plan --json` and `run --json`, one JSON object per line.
 * The human view prints the same events; `time` is milliseconds since the epoch.
 */
export type RunEvent =
  | { readonly event: 'run-start'; readonly time: number; readonly run: string; readonly pipeline: string; readonly jobs: number; readonly backend: string; readonly store: string; readonly instances: number; readonly selected: number; readonly toRun: number }
  | { readonly event: 'instance'; readonly time: number; readonly id: string; readonly stage: string; readonly matrix: Readonly<Record<string, JsonValue>>; readonly key: string; readonly status: 'cached' | 'run' | 'not-selected'; readonly reasons: readonly string[] }
  | { readonly event: 'stage-start'; readonly time: number; readonly id: string; readonly stage: string; readonly key: string; readonly where: 'process' | 'worker' | 'queue' }
  | { readonly event: 'waiting'; readonly time: number; readonly id: string; readonly stage: string; readonly key: string; readonly holder: { readonly pid: number; readonly host: string; readonly command: string } }
  | { readonly event: 'progress'; readonly time: number; readonly id: string; readonly progress: StageProgress }
  | { readonly event: 'log'; readonly time: number; readonly id: string; readonly level: 'debug' | 'info' | 'warn'; readonly message: string }
  | { readonly event: 'stage-end'; readonly time: number; readonly id: string; readonly stage: string; readonly key: string; readonly status: EndStatus; readonly durationMs: number; readonly failure?: Failure; readonly summary?: JsonValue; readonly peakRssMb?: number; readonly worker?: string }
  | { readonly event: 'published'; readonly time: number; readonly id: string; readonly key: string; readonly path: string; readonly files: readonly string[] }
  | { readonly event: 'warning'; readonly time: number; readonly message: string; readonly id?: string }
  | { readonly event: 'run-end'; readonly time: number; readonly run: string; readonly status: 'success' | 'failed' | 'interrupted'; readonly durationMs: number; readonly counts: Readonly<Record<string, number>> };

/** Receives events as they happen. */
export type EventSink = (event: RunEvent) => void;
