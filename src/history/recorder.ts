import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST, type Manifest } from '../cache/artifact.js';
import type { Store } from '../cache/store.js';
import { applyOverrides } from '../config/overrides.js';
import type { EndStatus, RunEvent } from '../executor/events.js';
import { describeFailure } from '../executor/failure.js';
import type { JsonValue } from '../util/json.js';
import { RunHistory, type StageOutcome } from './history.js';

/** What the recorder knows of a run before its first event. */
export interface RunFacts {
  readonly id: string;
  readonly pipeline: string;
  readonly file: string;
  /** The params as the pipeline file writes them; the recorder applies `sets`. */
  readonly fileParams: Readonly<Record<string, JsonValue>>;
  readonly sets: readonly string[];
  readonly options: Readonly<Record<string, JsonValue>>;
  readonly jobs: number;
  readonly started: number;
  readonly provenance: import('./provenance.js').Provenance | null;
}

const OUTCOME: Readonly<Record<EndStatus, StageOutcome>> = { done: 'executed', cached: 'cached', failed: 'failed', interrupted: 'interrupted', skipped: 'skipped' };

/**
 * Writes a run's events into the store's history as they happen. Recording is
 * a side concern: the first database error is reported through `warn` and
 * turns the recorder off, and the run goes on.
 */
export class HistoryRecorder {
  private seq = 0;
  private broken = false;
  private ended = false;

  private constructor(private readonly history: RunHistory, private readonly store: Store, private readonly run: RunFacts, private readonly warn: (message: string) => void) {}

  /** Opens the store's history and records the run as started; null (after a warning) when the history cannot be opened. */
  static open(store: Store, run: RunFacts, warn: (message: string) => void): HistoryRecorder | null {
    try {
      const history = RunHistory.open(store.root, { create: true });
      if (history === null) return null;
      const { fileParams, ...rest } = run;
      history.startRun({ ...rest, params: applyOverrides(fileParams, run.sets).params });
      return new HistoryRecorder(history, store, run, warn);
    } catch (error) {
      warn(`the run history is not recorded: ${error instanceof Error ? error.message : String(error)}`);
      return null;
    }
  }

  /** Records one event; progress and log events are not kept. */
  record(event: RunEvent): void {
    if (this.broken) return;
    try {
      this.apply(event);
    } catch (error) {
      this.broken = true;
      this.warn(`the run history stopped recording: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private apply(event: RunEvent): void {
    const run = this.run.id;
    switch (event.event) {
      case 'instance': {
        const outcome: StageOutcome = event.status === 'cached' ? 'cached' : event.status === 'run' ? 'pending' : 'not-selected';
        // A cached instance's metrics come from its manifest, so every run's history holds every cell's numbers.
        const summary = event.status === 'cached' ? this.cachedSummary(event.key) : null;
        this.history.addStage({ runId: run, seq: this.seq++, id: event.id, stage: event.stage, matrix: event.matrix, key: event.key, outcome, summary });
        return;
      }
      case 'stage-start':
        this.history.startStage(run, event.id, event.time);
        return;
      case 'stage-end':
        this.history.endStage(run, event.id, {
          outcome: OUTCOME[event.status],
          durationMs: event.status === 'skipped' ? null : event.durationMs,
          ...(event.summary !== undefined ? { summary: event.summary } : {}),
          ...(event.failure !== undefined ? { error: describeFailure(event.failure).message } : {}),
          ...(event.peakRssMb !== undefined ? { peakRssMb: event.peakRssMb } : {}),
          ...(event.worker !== undefined ? { worker: event.worker } : {}),
        });
        return;
      case 'run-end':
        this.history.endRun(run, event.status, event.time, event.counts);
        this.ended = true;
        return;
      case 'run-start':
        // The run's row was written when the recorder opened.
        return;
      case 'progress':
      case 'waiting':
      case 'log':
      case 'warning':
      case 'published':
        // Live detail: the run's log file keeps it, the history does not.
        return;
    }
  }

  private cachedSummary(key: string): JsonValue {
    try {
      return (JSON.parse(readFileSync(join(this.store.objectDir(key), MANIFEST), 'utf8')) as Manifest).summary ?? null;
    } catch {
      return null;
    }
  }

  /** Closes the database; a run that stopped without reporting its end (an internal error) is recorded as failed. */
  close(): void {
    try {
      if (!this.broken && !this.ended) this.history.endRun(this.run.id, 'failed', Date.now(), {});
      this.history.close();
    } catch {
      // Closing after a database error may fail again; nothing is left to save.
    }
  }
}
