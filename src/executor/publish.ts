import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { LoadedPipeline } from '../config/spec.js';
import type { Plan } from '../plan/types.js';
import type { Store } from '../cache/store.js';
import { formatMatrix } from '../plan/matrix.js';

/** One instance's files copied out of the store under a stage's `publish` folder. */
export interface Published {
  readonly id: string;
  readonly key: string;
  /** The folder the files were copied into. */
  readonly path: string;
  readonly files: readonly string[];
}

/** The folder an instance's files go to: the stage's `publish` folder, and a subfolder per matrix values when the stage has several instances. */
export function publishPath(base: string, publish: string, matrix: Readonly<Record<string, unknown>>, several: boolean): string {
  const root = resolve(base, publish);
  if (!several) return root;
  return join(root, formatMatrix(matrix as never).replace(/[^A-Za-z0-9._=-]+/g, '_'));
}

/**
 * Copies the files of every complete artifact of a stage that has `publish:`
 * into that folder (relative to the pipeline file), like Nextflow's
 * publishDir or DVC's outs, so results sit at a name the user chose. Copies,
 * not links: editing a published file can never corrupt the cache, and `gc`
 * can never break a published result. Each folder is filled beside the target
 * and renamed into place, so a reader sees the old or the new files, never a
 * mix. Instances not computed (failed, not selected) are left as they were.
 */
export async function publishOutputs(plan: Plan, pipeline: LoadedPipeline, store: Store): Promise<Published[]> {
  const base = dirname(resolve(pipeline.source.file));
  const out: Published[] = [];
  for (const instance of plan.instances) {
    const publish = pipeline.spec.stages[instance.stage]?.publish;
    if (publish === undefined) continue;
    if ((await store.state(instance.key)).state !== 'ok') continue;
    const { dir, manifest } = await store.open(instance.key);
    const several = plan.instances.filter((i) => i.stage === instance.stage).length > 1;
    const target = publishPath(base, publish, instance.matrix, several);
    const temporary = `${target}.publishing-${process.pid}`;
    await rm(temporary, { recursive: true, force: true });
    const files = Object.keys(manifest.files).sort();
    for (const name of files) {
      await mkdir(dirname(join(temporary, name)), { recursive: true });
      await copyFile(join(dir, name), join(temporary, name));
    }
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { recursive: true, force: true });
    await rename(temporary, target);
    out.push({ id: instance.id, key: instance.key, path: target, files });
  }
  return out;
}
