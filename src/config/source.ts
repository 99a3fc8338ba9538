import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node, type Pair } from 'yaml';
import type { Diagnostic } from '../errors/diagnostic.js';

/** A path into the parsed document: map keys and sequence indexes. */
export type DocPath = readonly (string | number)[];

/** A parsed YAML file that can say where any value or key came from. */
export class SourceFile {
  readonly lines: readonly string[];
  private readonly counter = new LineCounter();
  readonly doc: Document.Parsed;

  constructor(readonly file: string, readonly text: string) {
    this.lines = text.split(/\r?\n/);
    this.doc = parseDocument(text, { lineCounter: this.counter, uniqueKeys: true, prettyErrors: false });
  }

  /** The document as plain JSON-like data. */
  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 1000 });
  }

  /** Syntax errors (including duplicate keys) as diagnostics. */
  syntaxDiagnostics(): Diagnostic[] {
    return this.doc.errors.map((error) => {
      const [start, end] = error.pos;
      const message = error.code === 'DUPLICATE_KEY'
        ? `duplicate key "${this.text.slice(start, end).trim()}": a key may appear only once in a mapping`
        : `YAML syntax error: ${firstLine(error.message)}`;
      const hint = error.code === 'DUPLICATE_KEY' ? 'remove or rename one of the two entries' : undefined;
      return this.at(start, Math.max(1, end - start), message, hint);
    });
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

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).trim();
}
