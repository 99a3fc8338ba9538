import { PIPELINE_SCHEMA } from '../config/pipeline-schema.js';
import { BUILTIN_NAMES, loadStage } from '../stages/registry.js';

type Schema = Record<string, unknown>;

/** A string holding a `${{ }}` expression: only seedflow can resolve it, so an editor accepts it anywhere. */
const EXPRESSION: Schema = { type: 'string', pattern: '\\$\\{\\{', description: 'An expression such as ${{ matrix.k }} or ${{ params.epochs }}, resolved by seedflow.' };

/** Keywords whose value is one sub-schema, a list of them, or a map of them. */
const ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'] as const;
const MANY = ['anyOf', 'oneOf', 'allOf'] as const;
const MAP = ['properties', 'patternProperties', 'definitions'] as const;

/**
 * For editors, a stage's `with` schema in full (types, enums, ranges,
 * `required`, nested keys) where every value may also be an expression:
 * each value's schema becomes "this, or a string with `${{`". Conditions
 * (`if`) are kept as they are: they test values, and an expression in a
 * tested key simply makes the condition not apply.
 */
export function editorWith(schema: Schema, isValue = true): Schema {
  const out: Schema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if ((ONE as readonly string[]).includes(keyword) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      // items, additionalProperties and contains describe new values; not, then and else the same one.
      out[keyword] = keyword === 'if' || keyword === 'propertyNames' ? value : editorWith(value as Schema, !['not', 'then', 'else'].includes(keyword));
    } else if ((MANY as readonly string[]).includes(keyword) && Array.isArray(value)) {
      out[keyword] = value.map((branch: Schema) => editorWith(branch, false));
    } else if ((MAP as readonly string[]).includes(keyword) && value !== null && typeof value === 'object') {
      out[keyword] = Object.fromEntries(Object.entries(value as Record<string, Schema>).map(([name, sub]) => [name, editorWith(sub)]));
    } else {
      out[keyword] = value;
    }
  }
  // ajv's strict mode wants every required key declared beside it (a `then: { required }` included); `{}` declares without constraining.
  const required = Array.isArray(out['required']) ? (out['required'] as string[]) : [];
  const declared = (out['properties'] ?? {}) as Schema;
  if (required.some((name) => !(name in declared))) {
    out['properties'] = { ...declared, ...Object.fromEntries(required.filter((name) => !(name in declared)).map((name) => [name, {}])) };
  }
  if (!isValue) return out;
  // Hover text and defaults stay at the top, where editors read them.
  const { description, default: defaultValue, ...rest } = out;
  return {
    ...(description !== undefined ? { description } : {}),
    ...(defaultValue !== undefined ? { default: defaultValue } : {}),
    anyOf: [rest, EXPRESSION],
  };
}

/**
 * The pipeline schema for editors (`# yaml-language-server: $schema=...`):
 * the file's structure, the list of built-in `uses`, and for each built-in
 * stage type its `with` schema in full, expressions allowed. `schemas/pipeline.schema.json` is this, and a test keeps
 * the two equal.
 */
export async function editorSchema(): Promise<Schema> {
  const branches: Schema[] = [];
  for (const name of BUILTIN_NAMES) {
    const stage = await loadStage({ kind: 'builtin', name });
    branches.push({
      if: { properties: { uses: { const: name } }, required: ['uses'] },
      then: { properties: { with: { ...editorWith(stage.schema as Schema, false), description: stage.description ?? name } } },
    });
  }
  const stages = PIPELINE_SCHEMA.properties.stages;
  const step = stages.additionalProperties;
  const uses: Schema = {
    ...step.properties.uses,
    anyOf: [
      { enum: [...BUILTIN_NAMES], description: 'A built-in stage type.' },
      { pattern: '^\\.{0,2}/', description: 'A local module, relative to the pipeline file.' },
    ],
  };
  return {
    ...PIPELINE_SCHEMA,
    properties: {
      ...PIPELINE_SCHEMA.properties,
      stages: { ...stages, additionalProperties: { ...step, properties: { ...step.properties, uses }, allOf: branches } },
    },
  };
}

/** One stage type's full `with` schema, or undefined for an unknown type. */
export async function stageSchema(name: string): Promise<Schema | undefined> {
  if (!(BUILTIN_NAMES as readonly string[]).includes(name)) return undefined;
  const stage = await loadStage({ kind: 'builtin', name });
  return { $schema: 'http://json-schema.org/draft-07/schema#', title: `seedflow stage "${name}"`, description: stage.description, ...stage.schema };
}
