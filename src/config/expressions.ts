/** The scopes an expression may read. */
export const SCOPES = ['matrix', 'params', 'replicate'] as const;
/** One of SCOPES. */
export type Scope = (typeof SCOPES)[number];

/** A reference such as `${{ matrix.k }}` or `${{ matrix.seeding.percent }}`. */
export interface Reference {
  readonly scope: Scope;
  /** The name after the scope (an axis or a param). */
  readonly name: string;
  /** Fields read inside an object value: `matrix.seeding.percent` has ["percent"]. */
  readonly fields: readonly string[];
  /** The whole `${{ ... }}` text, for locating it in the source. */
  readonly text: string;
}

/** A string split into literal text and references. */
export type Template = readonly (string | Reference)[];

/** A malformed expression, with the offending text. */
export interface ExpressionProblem {
  readonly text: string;
  readonly message: string;
  readonly hint?: string;
}

const EXPRESSION = /\$\{\{([\s\S]*?)\}\}/g;
const BODY = /^\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)\s*$/;

/** Parses a string with `${{ ... }}` expressions; plain strings give a one-part template. */
export function parseTemplate(value: string): Template | ExpressionProblem {
  const parts: (string | Reference)[] = [];
  let last = 0;
  for (const match of value.matchAll(EXPRESSION)) {
    const index = match.index ?? 0;
    if (index > last) parts.push(value.slice(last, index));
    const text = match[0];
    const body = BODY.exec(match[1] ?? '');
    if (body === null) {
      return {
        text,
        message: `malformed expression ${text}`,
        hint: 'an expression reads one value, like ${{ matrix.k }} or ${{ params.epochs }}',
      };
    }
    const scope = body[1] ?? '';
    const path = (body[2] ?? '').slice(1).split('.');
    if (!(SCOPES as readonly string[]).includes(scope)) {
      return { text, message: `unknown expression scope "${scope}" in ${text}`, hint: 'expressions read "matrix.AXIS", "params.NAME" or "replicate.seed"' };
    }
    const [name = '', ...fields] = path;
    parts.push({ scope: scope as Scope, name, fields, text });
    last = index + text.length;
  }
  const rest = value.slice(last);
  const open = rest.indexOf('${{');
  if (open >= 0) return { text: rest.slice(open), message: `unterminated expression "${rest.slice(open)}"`, hint: 'close it with }}' };
  if (rest !== '' || parts.length === 0) parts.push(rest);
  return parts;
}

/** True when parsing gave a problem. */
export function isProblem(t: Template | ExpressionProblem): t is ExpressionProblem {
  return !Array.isArray(t);
}
