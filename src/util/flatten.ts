import type { JsonValue } from './json.js';

/** A scalar JSON value, as a flattened field holds. */
export type Scalar = string | number | boolean | null;

/**
 * Flattens nested objects to dotted names (`{ a: { b: 1 } }` gives `a.b`),
 * under `prefix` when given. Arrays are left out: they are no column.
 */
export function flattenJson(value: JsonValue, prefix = ''): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  const walk = (name: string, inner: JsonValue): void => {
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) {
      for (const [key, v] of Object.entries(inner)) walk(name === '' ? key : `${name}.${key}`, v);
    } else if (!Array.isArray(inner) && name !== '') {
      out[name] = inner as Scalar;
    }
  };
  walk('', value);
  if (prefix === '') return out;
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [`${prefix}.${k}`, v]));
}
