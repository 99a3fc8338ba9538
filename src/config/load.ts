import { DiagnosticError, type Diagnostic } from '../errors/diagnostic.js';
import { dict, dictOf } from '../util/dict.js';
import { readRegularFile } from '../util/files.js';
import { isPlainObject, type JsonValue } from '../util/json.js';
import { axisParam } from './overrides.js';
import { PIPELINE_SCHEMA } from './pipeline-schema.js';
import { replicateSeeds, type ReplicatesValue } from './replicates.js';
import { MAX_DEPTH, nonFinite, SourceFile, tooDeep, tooLarge } from './source.js';
import type { LoadedPipeline, MatrixSpec, PipelineSpec, StageSpec } from './spec.js';
import { validateWithSchema } from './validate-schema.js';

/** A diagnostic at a character offset of a text that was not parsed. */
function atOffset(file: string, text: string, offset: number, message: string, hint: string): Diagnostic {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return { file, line, column: offset - text.lastIndexOf('\n', offset - 1), length: 1, severity: 'error', message, hint };
}

/**
 * Parses and checks a pipeline's text against the pipeline schema. Returns
 * the spec, or every problem found, located. Pure: no file system.
 */
export function parsePipeline(file: string, text: string): { pipeline?: LoadedPipeline; diagnostics: Diagnostic[] } {
  // Cheap scans first: the parser's time and memory grow with depth, value count and quoted length.
  const deep = tooDeep(text);
  if (deep !== undefined) return { diagnostics: [atOffset(file, text, deep, `values are nested more than ${MAX_DEPTH} levels deep`, 'a pipeline needs a few levels; flatten this value')] };
  const large = tooLarge(text);
  if (large !== undefined) return { diagnostics: [atOffset(file, text, large.offset, large.message, large.hint)] };
  const source = new SourceFile(file, text);
  const syntax = source.syntaxDiagnostics();
  if (syntax.length > 0) return { diagnostics: syntax };
  const converted = source.toJS();
  if ('diagnostic' in converted) return { diagnostics: [converted.diagnostic] };
  const data = converted.value;
  if (!isPlainObject(data)) {
    return { diagnostics: [source.at(0, 1, 'a pipeline file must be a mapping with "name" and "stages"', 'start from the example in the README')] };
  }
  const diagnostics = validateWithSchema(PIPELINE_SCHEMA, data, { source, base: [], label: '' });
  for (const [axis, values] of Object.entries((data['matrix'] ?? {}) as Record<string, unknown>)) {
    const param = typeof values === 'string' ? axisParam(values) : '';
    if (typeof param !== 'string') diagnostics.push(source.atPath(['matrix', axis], param.message, 'for example k: "${{ params.ks }}" with params: { ks: [10, 20] }'));
  }
  for (const path of nonFinite(data, [])) {
    diagnostics.push(source.atPath(path, 'a number here must be finite', 'write a finite number: .inf, .nan and numbers beyond 1.8e308 cannot be stored or hashed'));
  }
  if (diagnostics.length > 0) return { diagnostics };
  return { pipeline: { spec: toSpec(data), source }, diagnostics: [] };
}

/** The largest pipeline file read, in bytes. */
export const MAX_PIPELINE_BYTES = 10 * 1024 * 1024;

/** Reads and parses a pipeline file; a missing, special or oversized file is a diagnostic too. */
export async function loadPipeline(file: string): Promise<LoadedPipeline> {
  const read = await readRegularFile(file, MAX_PIPELINE_BYTES);
  if ('problem' in read) {
    throw new DiagnosticError([{ file, line: 1, column: 1, length: 1, severity: 'error', message: read.problem === 'not found' ? 'pipeline file not found' : `cannot read the pipeline file: ${read.problem}` }]);
  }
  const text = read.text;
  const { pipeline, diagnostics } = parsePipeline(file, text);
  if (pipeline === undefined) throw new DiagnosticError(diagnostics);
  return pipeline;
}

function toSpec(data: Record<string, unknown>): PipelineSpec {
  const matrix = (data['matrix'] ?? {}) as Record<string, unknown>;
  const axes = dict<readonly JsonValue[]>();
  const fromParams = dict<string>();
  for (const [axis, values] of Object.entries(matrix)) {
    if (axis === 'include' || axis === 'exclude') continue;
    const param = typeof values === 'string' ? axisParam(values) : undefined;
    // Filled from the param by applySets, once `--set` is applied.
    if (typeof param === 'string') fromParams[axis] = param;
    axes[axis] = typeof values === 'string' ? [] : values as JsonValue[];
  }
  const matrixSpec: MatrixSpec = {
    axes,
    fromParams,
    include: (matrix['include'] ?? []) as MatrixSpec['include'],
    exclude: (matrix['exclude'] ?? []) as MatrixSpec['exclude'],
  };
  const stages = dict<StageSpec>();
  for (const [id, raw] of Object.entries(data['stages'] as Record<string, Record<string, unknown>>)) {
    stages[id] = {
      uses: raw['uses'] as string,
      needs: (raw['needs'] ?? []) as string[],
      with: (raw['with'] ?? dict()) as Record<string, JsonValue>,
      ...(typeof raw['description'] === 'string' ? { description: raw['description'] } : {}),
      ...(typeof raw['publish'] === 'string' ? { publish: raw['publish'] } : {}),
      ...(typeof raw['rounds'] === 'number' || typeof raw['rounds'] === 'string' ? { rounds: raw['rounds'] } : {}),
    };
  }
  return {
    name: data['name'] as string,
    ...(typeof data['description'] === 'string' ? { description: data['description'] } : {}),
    params: dictOf((data['params'] ?? {}) as Record<string, JsonValue>),
    matrix: matrixSpec,
    ...(data['replicates'] !== undefined ? { replicates: replicateSeeds(data['replicates'] as ReplicatesValue) } : {}),
    stages,
  };
}
