import { suggest, type Diagnostic } from '../errors/diagnostic.js';
import { dictOf, own } from '../util/dict.js';
import type { JsonValue } from '../util/json.js';
import { nonFinite } from './load.js';
import { SourceFile, tooDeep } from './source.js';

/** Where `--set` problems are reported: they come from the command line, not a file. */
export const COMMAND_LINE = '<command line>';

function kind(value: unknown): string {
  return Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
}

/** A `--set` value read as YAML, with the pipeline file's limits: finite numbers, bounded depth and aliases. */
function readValue(text: string): { value: unknown } | { problem: string } {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  if (tooDeep(text) !== undefined) return { problem: `value "${shown}" is nested too deeply` };
  const source = new SourceFile(COMMAND_LINE, text);
  if (source.doc.errors.length > 0) return { problem: `cannot read value "${shown}" as YAML` };
  const converted = source.toJS();
  if ('diagnostic' in converted) return { problem: `cannot read value "${shown}": ${converted.diagnostic.message}` };
  if (nonFinite(converted.value, []).length > 0) return { problem: `value "${shown}" holds a number that is not finite` };
  return { value: converted.value };
}

/**
 * Applies `--set NAME=VALUE` overrides to a pipeline's params. The value is
 * read as YAML (so `5` is a number and `[10, 20]` a list) and must have the
 * default's type; a string default takes the text as it is.
 */
export function applyOverrides(
  params: Readonly<Record<string, JsonValue>>,
  sets: readonly string[],
): { params: Record<string, JsonValue>; diagnostics: Diagnostic[] } {
  const result = dictOf(params);
  const diagnostics: Diagnostic[] = [];
  const problem = (set: string, column: number, length: number, message: string, hint?: string): void => {
    diagnostics.push({ file: COMMAND_LINE, line: 1, column, length, message: `--set ${set}: ${message}`, severity: 'error', ...(hint ? { hint } : {}) });
  };
  for (const set of sets) {
    const eq = set.indexOf('=');
    const name = eq < 0 ? set : set.slice(0, eq);
    if (eq <= 0) {
      problem(set, 1, Math.max(1, set.length), 'expected NAME=VALUE', 'for example --set epochs=5');
      continue;
    }
    const current = own(params, name);
    if (current === undefined) {
      problem(set, 1, name.length, `unknown param "${name}"`, suggest(name, Object.keys(params)) ?? 'declare it under "params:" in the pipeline');
      continue;
    }
    const text = set.slice(eq + 1);
    let value: unknown;
    if (typeof current === 'string') {
      value = text;
    } else {
      const read = readValue(text);
      if ('problem' in read) {
        problem(set, eq + 2, Math.max(1, text.length), read.problem);
        continue;
      }
      value = read.value;
    }
    if (kind(value) !== kind(current)) {
      problem(set, eq + 2, Math.max(1, text.length), `param "${name}" is a ${kind(current)} (default ${JSON.stringify(current)}), got ${kind(value)} ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}`);
      continue;
    }
    result[name] = value as JsonValue;
  }
  return { params: result, diagnostics };
}
