import { mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishArtifact } from '../../src/cache/artifact.js';
import { makeInputs, openArtifact } from '../../src/stages/inputs.js';
import { makeContext } from '../../src/stages/context.js';
import type { ArtifactReader, StageProgress, StageType } from '../../src/stages/types.js';
import type { JsonValue } from '../../src/util/json.js';

/** A fresh temporary folder for one test. */
export async function tempDir(prefix = 'seedflow-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** What `runStage` records besides the artifact. */
export interface StageRun {
  readonly artifact: ArtifactReader;
  readonly progress: StageProgress[];
  readonly logs: string[];
}

let counter = 0;

/**
 * Runs one stage type outside the engine, on artifacts made by earlier
 * `runStage` calls, and publishes its output like the engine does. Parameters
 * are passed as given: apply the schema's defaults yourself if the test needs them.
 */
export async function runStage<P>(
  stage: StageType<P>,
  params: P,
  inputs: Readonly<Record<string, readonly ArtifactReader[]>> = {},
  options: { readonly root?: string; readonly matrix?: Record<string, JsonValue>; /** For a stage that repeats in rounds: the previous round's artifact. */ readonly previous?: ArtifactReader } = {},
): Promise<StageRun> {
  const root = options.root ?? (await tempDir());
  const id = `${stage.name}-${++counter}`;
  const outDir = join(root, 'tmp', id);
  await mkdir(outDir, { recursive: true });
  const progress: StageProgress[] = [];
  const logs: string[] = [];
  const matrix = options.matrix ?? {};
  const started = Date.now();
  const ctx = makeContext({
    outDir,
    signal: new AbortController().signal,
    instance: { stage: id, key: id, matrix },
    log: (level, message) => logs.push(`${level}: ${message}`),
    progress: (p) => progress.push(p),
  });
  const summary = ((await stage.run(makeInputs(options.previous === undefined ? inputs : { ...inputs, [id]: [options.previous] }, id), params, ctx)) ?? null) as JsonValue;
  const finalDir = join(root, 'objects', id);
  await publishArtifact(outDir, finalDir, {
    key: id, stage: id, type: stage.name, matrix, record: null, summary, lineage: {}, createdAt: new Date().toISOString(), durationMs: Date.now() - started,
  });
  return { artifact: await openArtifact(finalDir), progress, logs };
}
