/**
 * What `seedflow gc` keeps and what it would remove. An artifact is kept when
 * one of the given pipelines reaches it now (with the `--set`s given), or
 * when a recorded run of one of those pipeline files, with any `--set`, used
 * or made it within the retention window: a sweep run from the command line
 * is not garbage the moment the file is edited.
 */
import { resolve } from 'node:path';
import { shortKey } from '../cache/key.js';
import type { Store } from '../cache/store.js';
import { RunHistory } from '../history/history.js';
import { instanceId } from '../plan/planner.js';
import { formatDuration } from './progress.js';

/** An artifact gc would remove, described for people. */
export interface Doomed {
  readonly key: string;
  /** The instance that made it (`train[k=10]`), or why that is unknown. */
  readonly instance: string;
  readonly bytes: number;
  /** Milliseconds since it was made, or null when its manifest does not say. */
  readonly ageMs: number | null;
}

/**
 * Keys used by runs of `files` that started at or after `since` (milliseconds since the epoch),
 * and how many runs those were. A history that cannot be read keeps nothing more, with a warning.
 */
export function recentKeys(root: string, files: readonly string[], since: number, warn: (message: string) => void): { readonly keys: Set<string>; readonly runs: number } {
  const keys = new Set<string>();
  const wanted = new Set(files.map((f) => resolve(f)));
  let history: RunHistory | null;
  try {
    history = RunHistory.open(root, { create: false });
  } catch (error) {
    warn(`the run history cannot be read (${error instanceof Error ? error.message : String(error)}); only what the pipelines reach now is kept`);
    return { keys, runs: 0 };
  }
  if (history === null) return { keys, runs: 0 };
  let runs = 0;
  try {
    for (const run of history.runs()) {
      if (!wanted.has(run.file) || run.started < since) continue;
      runs++;
      for (const stage of history.stages(run.id)) keys.add(stage.key);
    }
  } finally {
    history.close();
  }
  return { keys, runs };
}

/** The artifacts of `store` outside `keep`, oldest first, each with its instance, size and age. */
export async function doomedArtifacts(store: Store, keep: ReadonlySet<string>, now: number): Promise<Doomed[]> {
  const out: Doomed[] = [];
  for (const key of await store.keys()) {
    if (keep.has(key)) continue;
    let instance = '(no readable manifest)';
    let ageMs: number | null = null;
    try {
      const manifest = await store.manifest(key);
      instance = instanceId(manifest.stage, manifest.matrix);
      const made = Date.parse(manifest.createdAt);
      if (Number.isFinite(made)) ageMs = Math.max(0, now - made);
    } catch {
      // Damaged or half-written: still garbage, described as such.
    }
    out.push({ key, instance, bytes: await store.size(key), ageMs });
  }
  return out.sort((a, b) => (b.ageMs ?? Infinity) - (a.ageMs ?? Infinity) || a.key.localeCompare(b.key));
}

/** Bytes for people: `512 B`, `12.3 kB`, `4.5 MB`, `1.2 GB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit] ?? 'TB'}`;
}

/** One row of gc's listing: key, instance, size, age. */
export function doomedRow(d: Doomed): string[] {
  return [shortKey(d.key), d.instance, formatBytes(d.bytes), d.ageMs === null ? '?' : `${formatDuration(d.ageMs)} ago`];
}
