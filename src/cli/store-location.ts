import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The folder name of a store found without `--store`. */
export const STORE_NAME = 'artifacts';

/** Which store a command uses, and how it was chosen, for the line that says so. */
export interface StoreLocation {
  readonly root: string;
  readonly how: 'given by --store' | 'found' | 'at the project root' | 'next to the pipeline' | 'in the current folder';
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where the store is when `--store` is not given, as git finds its
 * repository: from the pipeline's folder (or, for a command without one, the
 * current folder) up to the file system's root, the first folder holding an
 * `artifacts/` folder; the walk stops at a project root (a folder holding
 * `.git`), whose `artifacts/` is the store. With neither, the store is
 * `artifacts/` next to the pipeline (or in the current folder). So
 * `cd .. && seedflow plan project/exp.yaml` reads `project/artifacts`, never a
 * fresh `../artifacts`. Nothing is created here: only `run` creates a store.
 */
export function findStore(given: string | undefined, pipeline?: string): StoreLocation {
  if (given !== undefined) return { root: resolve(given), how: 'given by --store' };
  const start = pipeline !== undefined ? dirname(resolve(pipeline)) : process.cwd();
  for (let dir = start; ; dir = dirname(dir)) {
    if (isDirectory(join(dir, STORE_NAME))) return { root: join(dir, STORE_NAME), how: 'found' };
    if (existsSync(join(dir, '.git'))) return { root: join(dir, STORE_NAME), how: 'at the project root' };
    if (dirname(dir) === dir) break;
  }
  return { root: join(start, STORE_NAME), how: pipeline !== undefined ? 'next to the pipeline' : 'in the current folder' };
}

/** The line that says which store a command uses and how it was found. */
export function describeStore(location: StoreLocation): string {
  return `store: ${location.root} (${location.how})`;
}
