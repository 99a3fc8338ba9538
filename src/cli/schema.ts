import { PIPELINE_SCHEMA } from '../config/pipeline-schema.js';
import { BUILTIN_NAMES, loadStage } from '../stages/registry.js';

type Schema = Record<string, unknown>;

/**
 * For editors, a stage's `with` lists its keys with their descriptions and
 * defaults but not their types: a value may be an expression such as
 * `${{ matrix.k }}`, which only seedflow can resolve and check.
 */
function editorWith(schema: Schema): Schema {
  const properties = (schema['properties'] ?? {}) as Record<string, Schema>;
  const out: Record<string, Schema> = {};
  for (const [name, prop] of Object.entries(properties)) {
    out[name] = {
      ...(prop['description'] !== undefined ? { description: prop['description'] } : {}),
      ...(prop['default'] !== undefined ? { default: prop['default'] } : {}),
    };
  }
  return { type: 'object', properties: out, additionalProperties: schema['additionalProperties'] ?? true };
}

/**
 * The pipeline schema for editors (`# yaml-language-server: $schema=...`):
 * the file's structure plus, for each built-in stage type, the keys its
 * `with` accepts. `schemas/pipeline.schema.json` is this, and a test keeps
 * the two equal.
 */
export async function editorSchema(): Promise<Schema> {
  const branches: Schema[] = [];
  for (const name of BUILTIN_NAMES) {
    const stage = await loadStage({ kind: 'builtin', name });
    branches.push({
      if: { properties: { uses: { const: name } }, required: ['uses'] },
      then: { properties: { with: { description: stage.description ?? name, ...editorWith(stage.schema as Schema) } } },
    });
  }
  const stages = PIPELINE_SCHEMA.properties.stages;
  return {
    ...PIPELINE_SCHEMA,
    properties: {
      ...PIPELINE_SCHEMA.properties,
      stages: { ...stages, additionalProperties: { ...stages.additionalProperties, allOf: branches } },
    },
  };
}

/** One stage type's full `with` schema, or undefined for an unknown type. */
export async function stageSchema(name: string): Promise<Schema | undefined> {
  if (!(BUILTIN_NAMES as readonly string[]).includes(name)) return undefined;
  const stage = await loadStage({ kind: 'builtin', name });
  return { $schema: 'http://json-schema.org/draft-07/schema#', title: `seedflow stage "${name}"`, description: stage.description, ...stage.schema };
}
