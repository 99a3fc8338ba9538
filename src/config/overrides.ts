import { suggest, type Diagnostic } from '../errors/diagnostic.js';
import { dictOf, hasOwn, own } from '../util/dict.js';
import type { JsonValue } from '../util/json.js';
import { isProblem, parseTemplate } from './expressions.js';
import { nonFinite, SourceFile, tooDeep } from './source.js';
import type { LoadedPipeline, MatrixSpec } from './spec.js';

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

/** `a number`, `an array`. */
function aKind(value: unknown): string {
  const k = kind(value);
  return `${/^[aeiou]/.test(k) ? 'an' : 'a'} ${k}`;
}

/** Splits `a,b,[c,d]` at the commas outside brackets, braces and quotes. */
export function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

const RANGE = /^range\(\s*([-+\d.eE]+)\s*(?:,\s*([-+\d.eE]+)\s*)?(?:,\s*([-+\d.eE]+)\s*)?\)$/;
/** The most values a `range()` may make: a sweep of more cells than this is a typo. */
export const MAX_RANGE = 10_000;

/**
 * Reads `range(stop)`, `range(start, stop)` or `range(start, stop, step)` as
 * Python and Hydra do (stop excluded); null when `text` is not a range, a
 * message when it is a wrong one.
 */
export function readRange(text: string): number[] | string | null {
  const m = RANGE.exec(text.trim());
  if (m === null) return text.trim().startsWith('range(') ? 'expected range(STOP), range(START, STOP) or range(START, STOP, STEP) with numbers' : null;
  const numbers = [m[1], m[2], m[3]].filter((v): v is string => v !== undefined).map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) return 'range() takes numbers';
  const [start, stop, step] = numbers.length === 1 ? [0, numbers[0] ?? 0, 1] : [numbers[0] ?? 0, numbers[1] ?? 0, numbers[2] ?? 1];
  if (step === 0) return 'range() step must not be 0';
  const count = Math.ceil((stop - start) / step);
  if (count <= 0) return `range(${numbers.join(', ')}) is empty`;
  if (count > MAX_RANGE) return `range(${numbers.join(', ')}) makes ${count} values, more than ${MAX_RANGE}`;
  // Values are computed from the start, not accumulated, so 0.1 steps do not drift.
  return Array.from({ length: count }, (_, i) => Number((start + i * step).toPrecision(12)));
}

/** A `--set` value read as a list of values: `range(...)`, `a,b,c`, or one YAML value; a message when unreadable. */
function readValues(text: string): { values: JsonValue[]; list: boolean } | string {
  const range = readRange(text);
  if (typeof range === 'string') return range;
  if (range !== null) return { values: range, list: true };
  const parts = splitTopLevel(text);
  const values: JsonValue[] = [];
  for (const part of parts) {
    const read = readValue(part);
    if ('problem' in read) return read.problem;
    values.push(read.value as JsonValue);
  }
  return { values, list: parts.length > 1 };
}

/** A pipeline with the command line's overrides applied, and what went wrong. */
export interface Overridden {
  /** The effective params (a swept param keeps its file default here; its values are a matrix axis). */
  readonly params: Record<string, JsonValue>;
  /** The matrix with axes replaced from the command line, axes read from params, and one axis per swept param. */
  readonly matrix: MatrixSpec;
  readonly diagnostics: Diagnostic[];
}

/**
 * Applies `--set NAME=VALUE` overrides, as Hydra's multirun and DVC's `-S` do:
 *
 * - NAME a param: the value is read as YAML and must have the default's type
 *   (a string default takes the text as it is). `a,b,c` or `range(...)` for a
 *   param that is not a list sweeps it: the param becomes a matrix axis of
 *   that name, and every `${{ params.NAME }}` reads it as `${{ matrix.NAME }}`.
 * - NAME a matrix axis: the axis takes the values given (`10,20`,
 *   `range(10, 60, 10)` or a YAML list), each of the kind of the file's values.
 *
 * A matrix axis written as `"${{ params.NAME }}"` takes its values from that
 * param (a list), after overrides. Every problem is a located diagnostic: at
 * the flag's text for `--set`, at the axis for the file.
 */
export function applySets(pipeline: LoadedPipeline, sets: readonly string[]): Overridden {
  const { spec, source } = pipeline;
  const params = dictOf<JsonValue>(spec.params);
  const axes = dictOf<readonly JsonValue[]>(spec.matrix.axes);
  const swept: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const problem = (set: string, column: number, length: number, message: string, hint?: string): void => {
    diagnostics.push({ file: COMMAND_LINE, line: 1, column, length, message: `--set ${set}: ${message}`, severity: 'error', ...(hint ? { hint } : {}) });
  };
  for (const set of sets) {
    const eq = set.indexOf('=');
    const name = eq < 0 ? set : set.slice(0, eq);
    if (eq <= 0) {
      problem(set, 1, Math.max(1, set.length), 'expected NAME=VALUE', 'for example --set epochs=5, --set k=10,20 or --set k=range(10,60,10)');
      continue;
    }
    const text = set.slice(eq + 1);
    const valueAt = (message: string, hint?: string): void => problem(set, eq + 2, Math.max(1, text.length), message, hint);
    const current = own(params, name);
    const isAxis = hasOwn(axes, name) || hasOwn(spec.matrix.fromParams ?? {}, name);
    if (current === undefined && !isAxis) {
      problem(set, 1, name.length, `unknown param or matrix axis "${name}"`, suggest(name, [...Object.keys(params), ...Object.keys(axes)]) ?? 'declare it under "params:" or "matrix:" in the pipeline');
      continue;
    }
    if (current !== undefined && isAxis) {
      problem(set, 1, name.length, `"${name}" is both a param and a matrix axis`, 'rename one of them in the pipeline');
      continue;
    }
    if (isAxis) {
      const from = own(spec.matrix.fromParams ?? {}, name);
      if (from !== undefined) {
        problem(set, 1, name.length, `matrix axis "${name}" takes its values from param "${from}"`, `set the param instead: --set ${from}=${text}`);
        continue;
      }
      const read = readValues(text);
      if (typeof read === 'string') {
        valueAt(read);
        continue;
      }
      const values = !read.list && read.values.length === 1 && Array.isArray(read.values[0]) ? (read.values[0] as JsonValue[]) : read.values;
      const kinds = new Set((own(spec.matrix.axes, name) ?? []).map(kind));
      const wrong = values.find((v) => kinds.size === 1 && !kinds.has(kind(v)));
      if (values.length === 0) valueAt(`matrix axis "${name}" needs at least one value`);
      else if (wrong !== undefined) valueAt(`matrix axis "${name}" has ${[...kinds][0] ?? ''} values, got ${kind(wrong)} ${JSON.stringify(wrong)}`);
      else axes[name] = values;
      continue;
    }
    if (typeof current === 'string' && readRange(text) === null && splitTopLevel(text).length === 1) {
      params[name] = text;
      continue;
    }
    const read = readValues(text);
    if (typeof read === 'string') {
      valueAt(read);
      continue;
    }
    if (read.list && !Array.isArray(current)) {
      const wrong = read.values.find((v) => kind(v) !== kind(current));
      if (wrong !== undefined) valueAt(`param "${name}" is ${aKind(current)} (default ${JSON.stringify(current)}), got ${kind(wrong)} ${JSON.stringify(wrong)}`);
      else {
        axes[name] = read.values;
        swept.push(name);
      }
      continue;
    }
    const value = read.list ? read.values : read.values[0];
    if (kind(value) !== kind(current)) {
      valueAt(`param "${name}" is ${aKind(current)} (default ${JSON.stringify(current)}), got ${kind(value)} ${JSON.stringify(text)}`);
      continue;
    }
    params[name] = value as JsonValue;
  }
  // Axes that read a param, once the params are final.
  for (const [axis, param] of Object.entries(spec.matrix.fromParams ?? {})) {
    const value = own(params, param);
    const at = (message: string, hint?: string): void => {
      diagnostics.push(source.atPath(['matrix', axis], message, hint));
    };
    if (swept.includes(param)) at(`matrix axis "${axis}" reads param "${param}", which --set sweeps`, `give the values as a list: --set ${param}=[...]`);
    else if (value === undefined) at(`matrix axis "${axis}" reads undefined param "${param}"`, suggest(param, Object.keys(params)) ?? 'declare it under "params:"');
    else if (!Array.isArray(value) || value.length === 0) at(`matrix axis "${axis}" reads param "${param}", which must be a non-empty list, got ${kind(value)} ${JSON.stringify(value)}`);
    else axes[axis] = value;
  }
  return { params, matrix: { ...spec.matrix, axes, sweptParams: swept }, diagnostics };
}

/** What a `matrix:` axis written as a string means: the name of the param it reads, or a message. */
export function axisParam(text: string): string | { message: string } {
  const template = parseTemplate(text);
  const only = isProblem(template) ? undefined : template[0];
  if (isProblem(template) || template.length !== 1 || only === undefined || typeof only === 'string' || only.scope !== 'params' || only.fields.length > 0) {
    return { message: `a matrix axis is a list of values or "\${{ params.NAME }}", got ${JSON.stringify(text)}` };
  }
  return only.name;
}

/**
 * The params after `--set` (only the plain overrides; sweeps and axes are
 * left out), for records that show the params a run used.
 */
export function applyOverrides(
  params: Readonly<Record<string, JsonValue>>,
  sets: readonly string[],
): { params: Record<string, JsonValue>; diagnostics: Diagnostic[] } {
  const { params: out, diagnostics } = applySets({
    spec: { name: '', params, matrix: { axes: {}, include: [], exclude: [] }, stages: {} },
    source: undefined as never,
  }, sets.filter((set) => hasOwn(params, set.slice(0, Math.max(0, set.indexOf('='))))));
  return { params: out, diagnostics };
}
