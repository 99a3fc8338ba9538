import { Lexer, LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document, type Node, type Pair } from 'yaml';
import type { Diagnostic } from '../errors/diagnostic.js';
import { dict } from '../util/dict.js';

/** A path into the parsed document: map keys and sequence indexes. */
export type DocPath = readonly (string | number)[];

/** A parsed YAML file that can say where any value or key came from. */
export class SourceFile {
  private readonly counter = new LineCounter();
  readonly doc: Document.Parsed;

  constructor(readonly file: string, readonly text: string) {
    // Duplicate keys are found below in one pass: the parser's own check compares every key of a map with every other.
    this.doc = parseDocument(text, { lineCounter: this.counter, uniqueKeys: false, prettyErrors: false });
  }

  /**
   * The document as plain JSON-like data whose maps have no prototype, or the
   * located reason it cannot be: an alias before its anchor, or aliases that
   * would expand beyond MAX_ALIAS_EXPANSION nodes (a "billion laughs").
   */
  toJS(): { value: unknown } | { diagnostic: Diagnostic } {
    let value: unknown;
    try {
      value = this.doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION });
    } catch (error) {
      if (!(error instanceof ReferenceError || error instanceof RangeError)) throw error;
      return { diagnostic: this.aliasProblem(error) };
    }
    try {
      return { value: withoutPrototypes(value, new Set()) };
    } catch (error) {
      if (!(error instanceof RecursiveAliasError)) throw error;
      return { diagnostic: this.aliasProblem(error) };
    }
  }

  private aliasProblem(error: Error): Diagnostic {
    const unresolved = /Unresolved alias[^:]*: (.*)$/.exec(error.message)?.[1];
    let at: Node | undefined;
    visit(this.doc, {
      Alias: (_key, node) => {
        if (unresolved === undefined || node.source === unresolved) {
          at = node;
          return visit.BREAK;
        }
        return undefined;
      },
    });
    const range = at?.range;
    const offset = range?.[0] ?? 0;
    const length = range ? Math.max(1, range[1] - range[0]) : 1;
    if (unresolved !== undefined) {
      return this.at(offset, length, `alias "*${unresolved}" is used before its anchor "&${unresolved}"`, 'define the anchor first: YAML reads aliases in document order');
    }
    if (error instanceof RecursiveAliasError) return this.at(offset, length, 'an alias refers to a value that contains it, which would never end', 'an anchored value cannot include its own alias');
    if (error instanceof RangeError) return this.at(offset, length, 'the document is nested too deeply to read', `nest values at most ${MAX_DEPTH} levels deep`);
    return this.at(offset, length, `aliases expand to more than ${MAX_ALIAS_EXPANSION} values`, 'write the values out, or use fewer aliases of large anchors');
  }

  /** Syntax errors (including duplicate keys) as diagnostics. */
  syntaxDiagnostics(): Diagnostic[] {
    const duplicates: Diagnostic[] = [];
    if (this.doc.errors.length === 0) {
      visit(this.doc, {
        Map: (_key, map) => {
          const seen = new Set<string>();
          for (const pair of map.items) {
            if (!isScalar(pair.key)) continue;
            const name = String(pair.key.value);
            if (!seen.has(name)) {
              seen.add(name);
              continue;
            }
            const range = pair.key.range ?? [0, 1];
            duplicates.push(this.at(range[0], Math.max(1, range[1] - range[0]), `duplicate key "${this.text.slice(range[0], range[1]).trim()}": a key may appear only once in a mapping`, 'remove or rename one of the two entries'));
          }
        },
      });
    }
    return [...duplicates, ...this.doc.errors.map((error) => {
      const [start, end] = error.pos;
      const message = error.code === 'DUPLICATE_KEY'
        ? `duplicate key "${this.text.slice(start, end).trim()}": a key may appear only once in a mapping`
        : `YAML syntax error: ${firstLine(error.message)}`;
      const hint = error.code === 'DUPLICATE_KEY' ? 'remove or rename one of the two entries' : undefined;
      return this.at(start, Math.max(1, end - start), message, hint);
    })];
  }

  /** A diagnostic at a byte offset. */
  at(offset: number, length: number, message: string, hint?: string): Diagnostic {
    const { line, col } = this.counter.linePos(Math.min(offset, this.text.length));
    return { file: this.file, line, column: col, length, message, severity: 'error', ...(hint !== undefined ? { hint } : {}) };
  }

  /** A diagnostic at the value found at `path` (or at its key, or at the nearest existing parent). */
  atPath(path: DocPath, message: string, hint?: string, target: 'value' | 'key' = 'value'): Diagnostic {
    const found = this.find(path);
    const node = target === 'key' ? found.key ?? found.value : found.value ?? found.key;
    const range = node?.range;
    if (range === undefined || range === null) return this.at(0, 1, message, hint);
    return this.at(range[0], Math.max(1, range[1] - range[0]), message, hint);
  }

  /**
   * A diagnostic at `needle` inside the string value at `path`, such as one
   * expression within a longer string.
   */
  atText(path: DocPath, needle: string, message: string, hint?: string): Diagnostic {
    const node = this.find(path).value;
    const range = node?.range;
    if (range !== undefined && range !== null) {
      const index = this.text.slice(range[0], range[1]).indexOf(needle);
      if (index >= 0) return this.at(range[0] + index, needle.length, message, hint);
    }
    return this.atPath(path, message, hint);
  }

  /** The key and value nodes at `path`, stopping at the deepest node that exists. */
  find(path: DocPath): { key?: Node; value?: Node } {
    let value: unknown = this.doc.contents;
    let key: Node | undefined;
    for (const step of path) {
      if (isMap(value)) {
        const pair = value.items.find((p: Pair) => isScalar(p.key) && String(p.key.value) === String(step));
        if (pair === undefined) return { value: value as Node, ...(key ? { key } : {}) };
        key = isScalar(pair.key) ? pair.key : undefined;
        value = pair.value ?? pair.key;
      } else if (isSeq(value) && typeof step === 'number') {
        const item = value.items[step];
        if (item === undefined) return { value: value as Node };
        key = undefined;
        value = isPair(item) ? item.value : item;
      } else {
        break;
      }
    }
    return { ...(value !== null && value !== undefined ? { value: value as Node } : {}), ...(key ? { key } : {}) };
  }
}

/** How many nodes aliases may expand to in one document: plenty for hand-written files, far below a memory problem. */
export const MAX_ALIAS_EXPANSION = 100_000;
/** How deep maps, lists and flow collections may nest in a pipeline. */
export const MAX_DEPTH = 64;

/** How many values (scalars, aliases, lists, maps and their items and entries) a pipeline may hold: far more than any experiment needs, small enough to parse in about a second. */
export const MAX_VALUES = 100_000;
/** How long one value may be, in characters: a long description fits, a file pasted into a string does not. */
export const MAX_VALUE_LENGTH = 1_048_576;

/** Indicator tokens that each start a node or an entry: lists, maps, items, keys, values and flow separators. */
const NODE_TOKENS: ReadonlySet<string> = new Set(['[', '{', '-', '?', ':', ',']);

/**
 * How many characters all double-quoted values may hold together: the parser
 * builds those strings a character at a time, at about 32 bytes a character.
 */
export const MAX_DOUBLE_QUOTED = 2_097_152;

/**
 * Where a YAML text holds more than MAX_VALUES values, a value longer than
 * MAX_VALUE_LENGTH or more than MAX_DOUBLE_QUOTED characters in double quotes,
 * and what to say, or undefined. The parser builds an object of about a
 * kilobyte for each value, and double-quoted strings character by character:
 * this scan only tokenizes, in bounded memory, and stops at the first excess,
 * so a hostile file is refused in well under a second.
 */
export function tooLarge(text: string): { readonly offset: number; readonly message: string; readonly hint: string } | undefined {
  let values = 0;
  let offset = 0;
  let quoted = 0;
  for (const token of new Lexer().lex(text)) {
    const code = token.charCodeAt(0);
    // One-character control tokens mark a scalar (0x1f), a document (0x02) or a flow end (0x18); they are not in the text.
    if (token.length === 1 && (code === 0x1f || code === 0x02 || code === 0x18)) {
      if (code === 0x1f) values++;
    } else {
      // Each of these makes the parser build a node or an entry: an empty one where no scalar follows.
      if (NODE_TOKENS.has(token) || code === 0x2a /* * alias */ || code === 0x7c /* | */ || code === 0x3e /* > */) values++;
      if (token.length > MAX_VALUE_LENGTH && code !== 0x23 /* # */) {
        return { offset, message: `a value of ${token.length.toLocaleString('en-US')} characters, more than the limit of ${MAX_VALUE_LENGTH.toLocaleString('en-US')}`, hint: 'a pipeline holds settings, not data: put large content in a file the stage reads' };
      }
      if (code === 0x22 /* " */) {
        quoted += token.length;
        if (quoted > MAX_DOUBLE_QUOTED) {
          return { offset, message: `double-quoted values hold more than ${MAX_DOUBLE_QUOTED.toLocaleString('en-US')} characters in all`, hint: "write long text in single quotes or as a block scalar (|), which are read at once" };
        }
      }
      offset += token.length;
    }
    if (values > MAX_VALUES) {
      return { offset, message: `the file holds more than ${MAX_VALUES.toLocaleString('en-US')} values`, hint: 'a pipeline describes its grid with a matrix, not by writing every instance out; split it, or generate fewer stages' };
    }
  }
  return undefined;
}

/** A value that contains itself through an alias (`&a [1, *a]`). */
class RecursiveAliasError extends Error {}

/**
 * A deep copy of parsed YAML data whose maps have no prototype, so keys like
 * "__proto__" stay plain keys. `path` holds the values being copied above this
 * one: meeting one again means a recursive alias, which would copy forever.
 */
function withoutPrototypes(value: unknown, path: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (path.has(value)) throw new RecursiveAliasError('recursive alias');
  path.add(value);
  try {
    if (Array.isArray(value)) return value.map((inner) => withoutPrototypes(inner, path));
    const out = dict<unknown>();
    for (const [key, inner] of Object.entries(value)) out[key] = withoutPrototypes(inner, path);
    return out;
  } finally {
    path.delete(value);
  }
}

/**
 * The offset where a YAML text nests deeper than MAX_DEPTH, or undefined.
 * A cheap scan of indentation, "- " markers and flow brackets that runs
 * before the parser, whose recursion a few thousand levels would overflow.
 */
export function tooDeep(text: string): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  // Line by line without splitting the whole text: a file of millions of short lines stays small.
  for (let offset = 0, end = 0; offset <= text.length; offset = end + 1) {
    end = text.indexOf('\n', offset);
    if (end < 0) end = text.length;
    const line = text.slice(offset, end);
    const body = line.trimStart();
    const indent = line.length - body.length;
    if (flow === 0 && body !== '' && !body.startsWith('#')) {
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) >= indent) indents.pop();
      indents.push(indent);
      const dashes = /^(?:-(?:[ \t]+|$))*/.exec(body)?.[0].split('-').length ?? 1;
      if (indents.length + dashes - 1 > MAX_DEPTH) return offset + indent;
    }
    let quote = '';
    for (let i = indent; i < line.length; i++) {
      const c = line[i];
      if (quote !== '') {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '#' && (i === 0 || line[i - 1] === ' ')) {
        break;
      } else if (c === '[' || c === '{') {
        flow++;
        if (indents.length + flow > MAX_DEPTH) return offset + i;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
      }
    }
  }
  return undefined;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).trim();
}

/** The paths of numbers that are not finite (`.inf`, `.nan`, `1e999`) in parsed data. */
export function nonFinite(value: unknown, path: DocPath): DocPath[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [path];
  if (Array.isArray(value)) return value.flatMap((item, i) => nonFinite(item, [...path, i]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => nonFinite(v, [...path, k]));
  return [];
}
