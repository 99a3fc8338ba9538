import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { JsonValue } from '../util/json.js';
import type { Provenance } from './provenance.js';

/** The history database's file name inside the store. */
export const HISTORY_FILE = 'history.sqlite';

/** How a run ended; `running` until it does (or forever, for a killed run). */
export type RunStatus = 'running' | 'success' | 'failed' | 'interrupted';

/**
 * What became of one stage instance in a run: taken from the cache, executed,
 * failed, stopped, skipped because something it needs did not complete, or
 * left out by `--only`. `pending` and `running` remain only for a killed run.
 */
export type StageOutcome = 'cached' | 'executed' | 'failed' | 'interrupted' | 'skipped' | 'not-selected' | 'pending' | 'running';

/** One run of `seedflow run`, as the history keeps it. */
export interface RunRecord {
  readonly id: string;
  readonly pipeline: string;
  /** The pipeline file, as an absolute path. */
  readonly file: string;
  /** The pipeline's params after `--set`. */
  readonly params: Readonly<Record<string, JsonValue>>;
  /** The `--set` arguments as given. */
  readonly sets: readonly string[];
  /** Other selections of the command line (`force`, `only`, `keepGoing`). */
  readonly options: Readonly<Record<string, JsonValue>>;
  /** Milliseconds since the epoch. */
  readonly started: number;
  readonly ended: number | null;
  readonly status: RunStatus;
  readonly jobs: number;
  /** Instance counts by outcome, as the run reported them at its end. */
  readonly counts: Readonly<Record<string, number>>;
  /** The pipeline text, git commit and versions; null for runs recorded before they were kept. */
  readonly provenance: Provenance | null;
}

/** One stage instance of a run. */
export interface StageRecord {
  readonly runId: string;
  /** The order the plan lists it in. */
  readonly seq: number;
  readonly id: string;
  readonly stage: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  readonly key: string;
  readonly outcome: StageOutcome;
  /** How long it ran in this run; null when it did not run. */
  readonly durationMs: number | null;
  /** The stage's summary (its metrics), for cached instances too. */
  readonly summary: JsonValue;
  readonly error: string | null;
  readonly peakRssMb: number | null;
  /** The queue worker that ran it (runs with --executor bullmq); null otherwise. */
  readonly worker: string | null;
}

interface RunRow {
  id: string; pipeline: string; file: string; params: string; sets: string; options: string;
  started: number; ended: number | null; status: string; jobs: number; counts: string; provenance: string | null;
}

interface StageRow {
  run_id: string; seq: number; id: string; stage: string; matrix: string; key: string; outcome: string;
  duration_ms: number | null; summary: string | null; error: string | null; peak_rss_mb: number | null; worker: string | null;
}

/** 2 added `stages.worker`; 3 added `runs.provenance`. */
const SCHEMA_VERSION = 3;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  pipeline TEXT NOT NULL,
  file TEXT NOT NULL,
  params TEXT NOT NULL,
  sets TEXT NOT NULL,
  options TEXT NOT NULL,
  started INTEGER NOT NULL,
  ended INTEGER,
  status TEXT NOT NULL,
  jobs INTEGER NOT NULL,
  counts TEXT NOT NULL DEFAULT '{}',
  provenance TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS stages (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  stage TEXT NOT NULL,
  matrix TEXT NOT NULL,
  key TEXT NOT NULL,
  outcome TEXT NOT NULL,
  started INTEGER,
  duration_ms INTEGER,
  summary TEXT,
  error TEXT,
  peak_rss_mb REAL,
  worker TEXT,
  PRIMARY KEY (run_id, id)
);
`;

function parse<T>(text: string | null, fallback: T): T {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function toRun(row: RunRow): RunRecord {
  return {
    id: row.id, pipeline: row.pipeline, file: row.file,
    params: parse(row.params, {}), sets: parse(row.sets, []), options: parse(row.options, {}),
    started: row.started, ended: row.ended, status: row.status as RunStatus, jobs: row.jobs, counts: parse(row.counts, {}),
    provenance: parse<Provenance | null>(row.provenance ?? null, null),
  };
}

function toStage(row: StageRow): StageRecord {
  return {
    runId: row.run_id, seq: row.seq, id: row.id, stage: row.stage, matrix: parse(row.matrix, {}), key: row.key,
    outcome: row.outcome as StageOutcome, durationMs: row.duration_ms, summary: parse<JsonValue>(row.summary, null),
    error: row.error, peakRssMb: row.peak_rss_mb, worker: row.worker ?? null,
  };
}

/**
 * The store's run history: one SQLite file (`history.sqlite`) with a row per
 * run and a row per stage instance of each run. Writes are synchronous and
 * small, so a run records its events as they happen and a killed run keeps
 * everything up to its last event.
 */
export class RunHistory {
  private constructor(private readonly db: Database.Database) {}

  /** Opens (creating when asked) the history of the store at `storeRoot`; null when there is none and `create` is false. */
  static open(storeRoot: string, options: { readonly create: boolean }): RunHistory | null {
    const file = join(storeRoot, HISTORY_FILE);
    if (!options.create && !existsSync(file)) return null;
    if (options.create) mkdirSync(storeRoot, { recursive: true });
    // Readers (runs, compare, report) may look while a run writes: wait for its short transactions.
    const db = new Database(file, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    // WAL with NORMAL sync loses at most the last events on a power cut, never the file.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new Error(`${file} was written by a newer seedflow (history format ${version}, this one reads ${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    // A history of format 1 gains the worker column; CREATE TABLE IF NOT EXISTS left its table as it was.
    const columns = db.prepare('PRAGMA table_info(stages)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'worker')) db.exec('ALTER TABLE stages ADD COLUMN worker TEXT');
    // Formats 1 and 2 had no provenance column.
    const runColumns = db.prepare('PRAGMA table_info(runs)').all() as { name: string }[];
    if (!runColumns.some((c) => c.name === 'provenance')) db.exec('ALTER TABLE runs ADD COLUMN provenance TEXT');
    if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return new RunHistory(db);
  }

  /** Records the start of a run. */
  startRun(run: Omit<RunRecord, 'ended' | 'status' | 'counts'>): void {
    this.db.prepare('INSERT INTO runs (id, pipeline, file, params, sets, options, started, ended, status, jobs, counts, provenance) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)')
      .run(run.id, run.pipeline, run.file, JSON.stringify(run.params), JSON.stringify(run.sets), JSON.stringify(run.options), run.started, 'running', run.jobs, '{}', run.provenance === null ? null : JSON.stringify(run.provenance));
  }

  /** Records how a run ended. */
  endRun(id: string, status: RunStatus, ended: number, counts: Readonly<Record<string, number>>): void {
    this.db.prepare('UPDATE runs SET status = ?, ended = ?, counts = ? WHERE id = ?').run(status, ended, JSON.stringify(counts), id);
  }

  /** Adds a stage instance to a run, as planned. */
  addStage(stage: Omit<StageRecord, 'durationMs' | 'error' | 'peakRssMb' | 'worker'>): void {
    this.db.prepare('INSERT OR REPLACE INTO stages (run_id, seq, id, stage, matrix, key, outcome, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(stage.runId, stage.seq, stage.id, stage.stage, JSON.stringify(stage.matrix), stage.key, stage.outcome, stage.summary === null ? null : JSON.stringify(stage.summary));
  }

  /** Marks a stage instance as running. */
  startStage(runId: string, id: string, started: number): void {
    this.db.prepare("UPDATE stages SET outcome = 'running', started = ? WHERE run_id = ? AND id = ?").run(started, runId, id);
  }

  /** Records how a stage instance ended. */
  endStage(runId: string, id: string, end: { readonly outcome: StageOutcome; readonly durationMs: number | null; readonly summary?: JsonValue; readonly error?: string; readonly peakRssMb?: number; readonly worker?: string }): void {
    this.db.prepare('UPDATE stages SET outcome = ?, duration_ms = ?, summary = COALESCE(?, summary), error = ?, peak_rss_mb = ?, worker = ? WHERE run_id = ? AND id = ?')
      .run(end.outcome, end.durationMs, end.summary === undefined ? null : JSON.stringify(end.summary), end.error ?? null, end.peakRssMb ?? null, end.worker ?? null, runId, id);
  }

  /** Runs newest first, optionally only those of one pipeline (by name or file). */
  runs(pipeline?: string): RunRecord[] {
    const rows = pipeline === undefined
      ? this.db.prepare('SELECT * FROM runs ORDER BY started DESC, id DESC').all() as RunRow[]
      : this.db.prepare('SELECT * FROM runs WHERE pipeline = ? OR file = ? ORDER BY started DESC, id DESC').all(pipeline, pipeline) as RunRow[];
    return rows.map(toRun);
  }

  /**
   * Finds a run by its id, a unique prefix of it, `latest`, or `latest~N`
   * (the Nth run before the latest). Returns a message when none or several match.
   */
  findRun(ref: string): RunRecord | { readonly problem: string } {
    const back = /^latest(?:~(\d+))?$/.exec(ref);
    if (back !== null) {
      const n = Number(back[1] ?? 0);
      const row = this.db.prepare('SELECT * FROM runs ORDER BY started DESC, id DESC LIMIT 1 OFFSET ?').get(n) as RunRow | undefined;
      return row === undefined ? { problem: `there is no run ${ref}: the history holds fewer than ${n + 1} runs` } : toRun(row);
    }
    const rows = this.db.prepare("SELECT * FROM runs WHERE id = ? OR substr(id, 1, length(?)) = ? ORDER BY started DESC").all(ref, ref, ref) as RunRow[];
    const exact = rows.find((r) => r.id === ref);
    if (exact !== undefined) return toRun(exact);
    const [only, ...more] = rows;
    if (only === undefined) return { problem: `no run "${ref}" in the history (see seedflow runs)` };
    if (more.length > 0) return { problem: `"${ref}" matches ${rows.length} runs: ${rows.slice(0, 5).map((r) => r.id).join(', ')}${rows.length > 5 ? ', ...' : ''}` };
    return toRun(only);
  }

  /**
   * The median duration of one execution of each stage, by stage id, over the
   * last `runs` runs of a pipeline (for the live view's ETA).
   */
  typicalDurations(pipeline: string, runs = 20): Map<string, number> {
    const rows = this.db.prepare(`SELECT s.stage AS stage, s.duration_ms AS ms FROM stages s
      JOIN (SELECT id FROM runs WHERE pipeline = ? ORDER BY started DESC LIMIT ?) r ON s.run_id = r.id
      WHERE s.outcome = 'done' AND s.duration_ms IS NOT NULL`).all(pipeline, runs) as { stage: string; ms: number }[];
    const byStage = new Map<string, number[]>();
    for (const row of rows) byStage.set(row.stage, [...(byStage.get(row.stage) ?? []), row.ms]);
    return new Map([...byStage].map(([stage, list]) => {
      const sorted = list.sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return [stage, sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2];
    }));
  }

  /**
   * The instances that failed, were skipped or were interrupted in the latest
   * run of a pipeline (by name), by instance id, with that outcome, the key
   * they had and the first line of their error.
   */
  lastFailures(pipeline: string): Map<string, { readonly outcome: string; readonly key: string; readonly error: string; readonly run: string }> {
    const latest = this.db.prepare('SELECT id FROM runs WHERE pipeline = ? ORDER BY started DESC, id DESC LIMIT 1').get(pipeline) as { id: string } | undefined;
    if (latest === undefined) return new Map();
    const rows = this.db.prepare("SELECT id, key, outcome, error FROM stages WHERE run_id = ? AND outcome IN ('failed', 'skipped', 'interrupted')").all(latest.id) as { id: string; key: string; outcome: string; error: string | null }[];
    return new Map(rows.map((r) => [r.id, { outcome: r.outcome, key: r.key, error: (r.error ?? '').split('\n')[0] ?? '', run: latest.id }]));
  }

  /** The stage instances of a run, in plan order. */
  stages(runId: string): StageRecord[] {
    return (this.db.prepare('SELECT * FROM stages WHERE run_id = ? ORDER BY seq').all(runId) as StageRow[]).map(toStage);
  }

  /** Closes the database file. */
  close(): void {
    this.db.close();
  }
}
