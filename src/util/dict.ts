/**
 * Maps keyed by user input. A plain object inherits `constructor`, `toString`
 * and `__proto__` from Object.prototype, so a stage, param or axis named like
 * one would read inherited values or, through `__proto__`, replace the
 * prototype. These objects have no prototype: every key is the user's own.
 */

/** An empty object without a prototype. */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A prototype-free copy of an object's own enumerable entries. */
export function dictOf<T>(entries: Iterable<readonly [string, T]> | Readonly<Record<string, T>>): Record<string, T> {
  const out = dict<T>();
  const list = Symbol.iterator in entries ? (entries as Iterable<readonly [string, T]>) : Object.entries(entries as Record<string, T>);
  // Assignment on a prototype-free object makes "__proto__" an own key like any other.
  for (const [key, value] of list) out[key] = value;
  return out;
}

/** The own value at `key`, never an inherited one. */
export function own<T>(map: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
}

/** True when `key` is an own key of `map`. */
export function hasOwn(map: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(map, key);
}
