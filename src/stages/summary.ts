import { isPlainObject } from '../util/json.js';
import type { JsonValue } from '../util/json.js';
import type { StageSummary } from './types.js';

/** What is wrong with a value a stage's `run` returned as its summary, or null when it is a {@link StageSummary}. */
export function summaryProblem(value: unknown): string | null {
  if (!isPlainObject(value)) return `it is ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}, not an object`;
  const extra = Object.keys(value).filter((k) => k !== 'metrics' && k !== 'timings' && k !== 'details');
  if (extra.length > 0) return `it has field${extra.length === 1 ? '' : 's'} ${extra.map((k) => `"${k}"`).join(', ')} besides metrics, timings and details`;
  const { metrics, timings, details } = value;
  if (!isPlainObject(metrics)) return 'its "metrics" is not an object';
  for (const [name, v] of Object.entries(metrics)) {
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) return `metric "${name}" is ${JSON.stringify(v) ?? String(v)}, not a finite number or null`;
  }
  if (!isPlainObject(timings)) return 'its "timings" is not an object';
  for (const [name, v] of Object.entries(timings)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return `timing "${name}" is ${JSON.stringify(v) ?? String(v)}, not a number of seconds`;
  }
  if (details !== undefined && !isPlainObject(details)) return 'its "details" is not an object';
  return null;
}

/** A stored summary read back: null for none, or for a summary of the shape stages returned before metrics and timings were apart. */
export function readSummary(value: JsonValue): StageSummary | null {
  return summaryProblem(value) === null ? (value as unknown as StageSummary) : null;
}
