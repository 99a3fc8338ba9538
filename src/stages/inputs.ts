import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from '../cache/artifact.js';
import { readPixels } from '../cache/pixels.js';
import type { DType, NdArray } from '../util/npy.js';
import { readNpy } from '../util/npy.js';
import { readSummary } from './summary.js';
import type { ArtifactReader, StageInputs } from './types.js';
import { StageUserError } from './types.js';

/** An expected array shape: a size per dimension, `'*'` for any size. */
export type ShapePattern = readonly (number | '*')[];

function fits(shape: readonly number[], pattern: ShapePattern): boolean {
  return shape.length === pattern.length && pattern.every((want, i) => want === '*' || shape[i] === want);
}

function mismatch(artifact: ArtifactReader, name: string, found: string, wanted: string): StageUserError {
  return new StageUserError(
    `file ${name} of the "${artifact.stage}" artifact (a ${artifact.type} stage) is ${found}, expected ${wanted}`,
    `check that this stage needs the right ${artifact.type} stage, or rerun it with --force if its artifact was edited`,
  );
}

const dims = (shape: readonly (number | string)[]): string => `[${shape.join(', ')}]`;

/**
 * Reads one `.npy` file of an input artifact and checks its dtype and shape;
 * a mismatch is a StageUserError naming the artifact's stage and the file.
 */
export async function readArray<D extends DType>(artifact: ArtifactReader, name: string, dtype: D, shape: ShapePattern): Promise<NdArray<D>> {
  const array = await artifact.readNpy(name);
  if (array.dtype !== dtype || !fits(array.shape, shape)) throw mismatch(artifact, name, `${array.dtype} ${dims(array.shape)}`, `${dtype} ${dims(shape)}`);
  return array as NdArray<D>;
}

/** Reads an input's images as floats in [0, 1] (shared: never write to them), checking their shape as {@link readArray} does. */
export async function readImages(artifact: ArtifactReader, name: string, shape: ShapePattern): Promise<{ pixels: Float32Array; shape: readonly number[] }> {
  const images = await artifact.readPixels(name);
  if (!fits(images.shape, shape)) throw mismatch(artifact, name, `of shape ${dims(images.shape)}`, `shape ${dims(shape)}`);
  return images;
}

/** Opens a published artifact for reading by a stage. */
export async function openArtifact(dir: string): Promise<ArtifactReader> {
  const manifest = await readManifest(dir);
  return {
    key: manifest.key,
    stage: manifest.stage,
    type: manifest.type,
    matrix: manifest.matrix,
    dir,
    summary: readSummary(manifest.summary ?? null),
    lineage: manifest.lineage ?? {},
    path: (name) => join(dir, name),
    readJson: async <T>(name: string) => JSON.parse(await readFile(join(dir, name), 'utf8')) as T,
    readNpy: (name) => readNpy(join(dir, name)),
    readPixels: (name) => readPixels(join(dir, name)),
  };
}

/**
 * Builds the inputs object a stage sees from the opened artifacts of each
 * need; `stage` is the running stage's id, under which the planner lists the
 * previous round of a stage that repeats in rounds.
 */
export function makeInputs(byNeed: Readonly<Record<string, readonly ArtifactReader[]>>, stage?: string): StageInputs {
  const previous = stage === undefined ? undefined : byNeed[stage];
  const ids = Object.keys(byNeed).filter((id) => id !== stage);
  const needs = (): string => ids.map((id) => `${id} (${[...new Set((byNeed[id] ?? []).map((a) => a.type))].join(', ') || 'nothing'})`).join(', ') || 'nothing';
  const ofType = (type: string, why: string): ArtifactReader | null => {
    const found = ids.flatMap((id) => byNeed[id] ?? []).filter((a) => a.type === type);
    if (found.length > 1) {
      throw new StageUserError(`${why}, but ${found.length} of its inputs are "${type}" stages (${found.map((a) => a.stage).join(', ')})`, `keep exactly one ${type} stage in this stage's needs`);
    }
    return found[0] ?? null;
  };
  return {
    ids,
    byType(type, why = 'this stage reads the output of a "' + type + '" stage') {
      const only = ofType(type, why);
      if (only === null) {
        throw new StageUserError(`${why}, but none of its needs is a "${type}" stage (it needs ${needs()})`, `add a ${type} stage to this stage's needs`);
      }
      return only;
    },
    findType(type) {
      return ofType(type, `this stage reads the output of a "${type}" stage when it has one`);
    },
    all(id) {
      const list = id === stage ? undefined : byNeed[id];
      if (list === undefined) throw new Error(`stage has no input "${id}"; it needs ${ids.join(', ') || 'nothing'}`);
      return list;
    },
    previousRound() {
      return previous?.[0] ?? null;
    },
    one(id) {
      const list = this.all(id);
      if (list.length !== 1 || list[0] === undefined) throw new Error(`input "${id}" has ${list.length} artifacts, expected exactly one`);
      return list[0];
    },
  };
}

/**
 * The training rows a stage that works on features reads: the `train.npy`
 * of a `features` input when it has one, else the split's training images
 * scaled to [0, 1]. Shared: never write to them.
 */
export async function trainingPoints(inputs: StageInputs): Promise<{ readonly points: Float32Array; readonly n: number; readonly d: number; readonly space: string }> {
  const features = inputs.findType('features');
  if (features !== null) {
    const array = await readArray(features, 'train.npy', 'float32', ['*', '*']);
    const [n = 0, d = 0] = array.shape;
    return { points: array.data, n, d, space: `features of ${features.stage}` };
  }
  const { pixels, shape: [n = 0, d = 0] } = await readImages(inputs.byType('split', 'this stage reads the training images of a split (or the train.npy of a features stage)'), 'x_train.npy', ['*', '*']);
  return { points: pixels, n, d, space: 'pixels' };
}
