import { readFile } from 'node:fs/promises';
import { DiagnosticError, type Diagnostic } from '../errors/diagnostic.js';
import { isPlainObject, type JsonValue } from '../util/json.js';
import { PIPELINE_SCHEMA } from './pipeline-schema.js';
import { replicateSeeds, type ReplicatesValue } from './replicates.js';
import { SourceFile } from './source.js';
import type { LoadedPipeline, MatrixSpec, PipelineSpec, StageSpec } from './spec.js';
import { validateWithSchema } from './validate-schema.js';

/**
 * Parses and checks a pipeline's text against the pipeline schema. Returns
 * the spec, or every problem found, located. Pure: no file system.
 */
export function parsePipeline(file: string, text: string): { pipeline?: LoadedPipeline; diagnostics: Diagnostic[] } {
  const source = new SourceFile(file, text);
  const syntax = source.syntaxDiagnostics();
  if (syntax.length > 0) return { diagnostics: syntax };
  const data = source.toJS();
  if (!isPlainObject(data)) {
    return { diagnostics: [source.at(0, 1, 'a pipeline file must be a mapping with "name" and "stages"', 'start from the example in the README')] };
  }
  const diagnostics = validateWithSchema(PIPELINE_SCHEMA, data, { source, base: [], label: '' });
  if (diagnostics.length > 0) return { diagnostics };
  return { pipeline: { spec: toSpec(data), source }, diagnostics: [] };
}

/** Reads and parses a pipeline file; a missing file is a diagnostic too. */
export async function loadPipeline(file: string): Promise<LoadedPipeline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DiagnosticError([{
      file, line: 1, column: 1, length: 1, severity: 'error',
      message: code === 'ENOENT' ? 'pipeline file not found' : `cannot read pipeline file (${code ?? String(error)})`,
    }]);
  }
  const { pipeline, diagnostics } = parsePipeline(file, text);
  if (pipeline === undefined) throw new DiagnosticError(diagnostics);
  return pipeline;
}

function toSpec(data: Record<string, unknown>): PipelineSpec {
  const matrix = (data['matrix'] ?? {}) as Record<string, unknown>;
  const axes: Record<string, readonly JsonValue[]> = {};
  for (const [axis, values] of Object.entries(matrix)) {
    if (axis !== 'include' && axis !== 'exclude') axes[axis] = values as JsonValue[];
  }
  const matrixSpec: MatrixSpec = {
    axes,
    include: (matrix['include'] ?? []) as MatrixSpec['include'],
    exclude: (matrix['exclude'] ?? []) as MatrixSpec['exclude'],
  };
  const stages: Record<string, StageSpec> = {};
  for (const [id, raw] of Object.entries(data['stages'] as Record<string, Record<string, unknown>>)) {
    stages[id] = {
      uses: raw['uses'] as string,
      needs: (raw['needs'] ?? []) as string[],
      with: (raw['with'] ?? {}) as Record<string, JsonValue>,
      ...(typeof raw['description'] === 'string' ? { description: raw['description'] } : {}),
    };
  }
  return {
    name: data['name'] as string,
    ...(typeof data['description'] === 'string' ? { description: data['description'] } : {}),
    params: (data['params'] ?? {}) as Record<string, JsonValue>,
    matrix: matrixSpec,
    ...(data['replicates'] !== undefined ? { replicates: replicateSeeds(data['replicates'] as ReplicatesValue) } : {}),
    stages,
  };
}
