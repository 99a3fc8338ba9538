/**
 * A problem in a user's input, located for a person to fix: the file, the
 * 1-based line and column, what is wrong and, where we can guess, a hint.
 */
export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** How many characters the caret underlines (at least 1). */
  readonly length: number;
  readonly message: string;
  readonly hint?: string;
  readonly severity: 'error' | 'warning';
}

/** A set of diagnostics thrown across layers; the CLI prints them and exits with code 2. */
export class DiagnosticError extends Error {
  constructor(readonly diagnostics: readonly Diagnostic[]) {
    super(diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.message}`).join('\n'));
    this.name = 'DiagnosticError';
  }
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The candidate closest to `word`, if it is close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** A "did you mean" hint, or a list of the valid choices when nothing is close. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const near = closest(word, candidates);
  if (near !== undefined) return `did you mean "${near}"?`;
  if (candidates.length === 0) return undefined;
  const shown = candidates.slice(0, 12).map((c) => `"${c}"`).join(', ');
  return `expected one of ${shown}${candidates.length > 12 ? ', ...' : ''}`;
}

/** Sorts diagnostics by file and position and drops exact repeats (one per matrix cell is one too many). */
export function tidy(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return [...diagnostics]
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column)
    .filter((d) => {
      const id = `${d.file}:${d.line}:${d.column}:${d.message}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
}

/** The widest source window and longest message printed for one diagnostic, in characters. */
const WINDOW = 160;
const MAX_MESSAGE = 400;

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/**
 * Formats one diagnostic the way compilers do: position, severity and message,
 * the source line with a caret under the culprit, then the hint.
 */
export function formatDiagnostic(d: Diagnostic, line?: string): string {
  const out = [`${d.file}:${d.line}:${d.column} ${d.severity}: ${clip(d.message, MAX_MESSAGE)}`];
  if (line !== undefined) {
    // A long line shows a window around the column, so one line of a huge file prints a few hundred characters.
    const start = Math.max(0, d.column - 1 - WINDOW / 2);
    const text = `${start > 0 ? '…' : ''}${line.slice(start, start + WINDOW)}${line.length > start + WINDOW ? '…' : ''}`;
    const column = d.column - start + (start > 0 ? 1 : 0);
    const gutter = String(d.line).length;
    out.push(`${' '.repeat(gutter)} |`);
    out.push(`${d.line} | ${text.replace(/\t/g, ' ')}`);
    const width = Math.max(1, Math.min(d.length, text.length - column + 1));
    out.push(`${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, column - 1))}${'^'.repeat(width)}`);
  }
  if (d.hint !== undefined) out.push(`  hint: ${clip(d.hint, MAX_MESSAGE)}`);
  return out.join('\n');
}
