import type { MatrixSpec } from '../config/spec.js';
import type { SourceFile } from '../config/source.js';
import { suggest, type Diagnostic } from '../errors/diagnostic.js';
import { dict, dictOf, hasOwn } from '../util/dict.js';
import { canonicalJson, type JsonValue } from '../util/json.js';

/** One combination of matrix values; combinations added by `include` may lack some axes. */
export type Combination = Readonly<Record<string, JsonValue>>;

function matches(combo: Combination, entry: Combination): boolean {
  return Object.entries(entry).every(([axis, value]) => hasOwn(combo, axis) && canonicalJson(combo[axis]) === canonicalJson(value));
}

/** The most combinations a matrix may have: far more than any experiment runs, far fewer than exhaust memory. */
export const MAX_COMBINATIONS = 10_000;

/**
 * Expands the matrix into its combinations with GitHub Actions' rules: the
 * cartesian product of the axes, minus every combination matching an
 * `exclude` entry; then each `include` entry is merged into every original
 * combination whose original values it does not change, or appended as a new
 * combination when it fits none.
 */
export function expandMatrix(matrix: MatrixSpec, source: SourceFile): { combos: Combination[]; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const axes = Object.keys(matrix.axes);
  const count = axes.reduce((n, axis) => n * (matrix.axes[axis]?.length ?? 0), 1) + matrix.include.length;
  if (count > MAX_COMBINATIONS) {
    const sizes = axes.map((axis) => `${axis}: ${matrix.axes[axis]?.length ?? 0}`).join(' × ');
    const extra = matrix.include.length > 0 ? ` + ${matrix.include.length} include entries` : '';
    diagnostics.push(source.atPath(['matrix'], `the matrix has ${count.toLocaleString('en-US')} combinations (${sizes}${extra}), more than the limit of ${MAX_COMBINATIONS.toLocaleString('en-US')}`, 'use fewer values per axis, or split the experiment into several pipelines', 'key'));
    return { combos: [], diagnostics };
  }
  let combos: Record<string, JsonValue>[] = [dict()];
  for (const axis of axes) {
    combos = combos.flatMap((combo) => (matrix.axes[axis] ?? []).map((value) => dictOf([...Object.entries(combo), [axis, value] as const])));
  }
  matrix.exclude.forEach((entry, index) => {
    for (const axis of Object.keys(entry)) {
      if (!axes.includes(axis)) {
        diagnostics.push(source.atPath(['matrix', 'exclude', index, axis], `exclude names unknown matrix axis "${axis}"`, suggest(axis, axes), 'key'));
      }
    }
  });
  const declared = combos.length > 0 && axes.length > 0;
  combos = combos.filter((combo) => !matrix.exclude.some((entry) => matches(combo, entry)));
  if (declared && combos.length === 0) {
    diagnostics.push(source.atPath(['matrix', 'exclude'], 'the matrix is empty: "exclude" removes every combination', 'remove an exclude entry or add values to an axis', 'key'));
  }
  // Include entries are checked against the original combinations only, never against ones an
  // earlier entry appended; with no axes there are none, and each entry is its own combination.
  const originals = axes.length === 0 ? [] : combos.map((combo) => dictOf(combo));
  if (axes.length === 0) combos = [];
  for (const entry of matrix.include) {
    let merged = false;
    originals.forEach((original, i) => {
      const conflicts = Object.entries(entry).some(([axis, value]) => hasOwn(original, axis) && canonicalJson(original[axis]) !== canonicalJson(value));
      if (!conflicts) {
        const target = combos[i];
        if (target !== undefined) for (const [axis, value] of Object.entries(entry)) target[axis] = value;
        merged = true;
      }
    });
    if (!merged) combos.push(dictOf(entry));
  }
  return { combos, diagnostics };
}

/** The values of the given axes in a combination, leaving out axes it lacks. */
export function project(combo: Combination, axes: ReadonlySet<string>): Combination {
  const out = dict<JsonValue>();
  for (const axis of [...axes].sort()) if (hasOwn(combo, axis)) out[axis] = combo[axis] as JsonValue;
  return out;
}

/** A short human label for matrix values: `k=10 seeding.strategy=part`. */
export function formatMatrix(values: Combination): string {
  const parts: string[] = [];
  const walk = (prefix: string, value: JsonValue): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(`${prefix}.${key}`, inner);
    } else {
      parts.push(`${prefix}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
    }
  };
  for (const [axis, value] of Object.entries(values)) walk(axis, value);
  return parts.join(' ');
}
