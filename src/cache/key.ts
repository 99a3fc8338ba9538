import { createHash } from 'node:crypto';
import { canonicalJson, type JsonObject, type JsonValue } from '../util/json.js';

/** The version of the key record's layout; changing the layout changes every key. */
export const KEY_FORMAT = 1;

/**
 * Everything an artifact's content depends on, and nothing else. Its
 * canonical JSON (sorted keys) hashed with SHA-256 is the artifact's key.
 * Not in it, on purpose: the run id, the time, the concurrency, the stage's
 * id and its position in the pipeline (renaming a stage keeps its cache),
 * except for a gathering stage, whose rows name the cells they come from.
 */
export interface KeyRecord {
  /** KEY_FORMAT. */
  readonly format: number;
  /** The stage type (`uses` for built-ins, the module's exported name for local ones). */
  readonly type: string;
  /** The stage type's version. */
  readonly version: string | number;
  /** The resolved `with`: expressions substituted, schema defaults applied, less the stage type's untracked parameters. */
  readonly params: JsonObject;
  /** The keys of the input artifacts, sorted. */
  readonly inputs: readonly string[];
  /** Content hashes (SHA-256) of external files the stage reads, by file name. */
  readonly files: Readonly<Record<string, string>>;
  /** The TensorFlow backend, for numeric stages only (results differ in the last bits between backends). */
  readonly backend?: string;
  /**
   * For a gathering stage (aggregate) only: the instance ids of its inputs
   * (stage id and matrix values), sorted, which its rows carry. Renaming a
   * stage or a matrix value reruns the gathering, not the work it gathers;
   * and two instances sharing one artifact are still named apart.
   */
  readonly gathered?: readonly string[];
}

/** The hex SHA-256 key of a record. */
export function keyOf(record: KeyRecord): string {
  return createHash('sha256').update(canonicalJson(record)).digest('hex');
}

/** The short form of a key shown to people (like git's abbreviated hashes). */
export function shortKey(key: string): string {
  return key.slice(0, 10);
}

/** Why two records differ, in words, most specific first; empty when equal. */
export function explainChange(before: KeyRecord, after: KeyRecord, inputNames: (key: string) => string | undefined): string[] {
  const reasons: string[] = [];
  if (before.type !== after.type) reasons.push(`stage type changed (${before.type} → ${after.type})`);
  else if (before.version !== after.version) reasons.push(`stage version changed (${before.version} → ${after.version})`);
  for (const change of diffValues('', before.params, after.params)) reasons.push(`param ${change}`);
  const removed = before.inputs.filter((k) => !after.inputs.includes(k));
  const added = after.inputs.filter((k) => !before.inputs.includes(k));
  if (removed.length > 0 || added.length > 0) {
    const names = [...new Set(added.map((k) => inputNames(k) ?? 'an input'))].sort();
    reasons.push(names.length > 0 ? `input ${names.join(', ')} changed` : 'inputs changed');
  }
  for (const name of new Set([...Object.keys(before.files), ...Object.keys(after.files)])) {
    if (before.files[name] !== after.files[name]) reasons.push(`file ${name} changed`);
  }
  if (before.backend !== after.backend) reasons.push(`backend changed (${before.backend ?? 'none'} → ${after.backend ?? 'none'})`);
  if (canonicalJson(before.gathered ?? null) !== canonicalJson(after.gathered ?? null)) reasons.push('the gathered cells\' names changed');
  if (before.format !== after.format) reasons.push('key format changed');
  return reasons;
}

function diffValues(path: string, before: JsonValue | undefined, after: JsonValue | undefined): string[] {
  const isObject = (v: JsonValue | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffValues(path === '' ? k : `${path}.${k}`, before[k], after[k]));
  }
  if (canonicalJson(before) === canonicalJson(after)) return [];
  const show = (v: JsonValue | undefined): string => (v === undefined ? 'unset' : truncate(JSON.stringify(v)));
  return [`${path} changed (${show(before)} → ${show(after)})`];
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
