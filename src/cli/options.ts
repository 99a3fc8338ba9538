import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, dirname, resolve } from 'node:path';
import { findStore, type StoreLocation } from './store-location.js';
import { describeFsError } from '../util/files.js';

/** A bad value of a command-line option: printed with the flag, exit 2. */
export class FlagError extends Error {}

/** What a command does with a path: only reads it, or may create and write under it. */
export type Access = 'read' | 'write';

/** The deepest existing path at or above `path`, with what it is; undefined if a lookup fails oddly. */
function nearestExisting(path: string): { path: string; isDirectory: boolean } | { path: string; problem: string } {
  let current = path;
  for (;;) {
    try {
      return { path: current, isDirectory: statSync(current).isDirectory() };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a file sits higher up; keep climbing to name it.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { path: current, problem: describeFsError(error) };
      const parent = dirname(current);
      if (parent === current) return { path: current, problem: describeFsError(error) };
      current = parent;
    }
  }
}

/**
 * Checks a folder a flag names (a store) and returns its absolute path: not
 * empty, not a file, not under a file, and writable when the command writes.
 * A folder that does not exist yet is fine: it is created on first write.
 */
export function checkFolderFlag(flag: string, value: string, access: Access): string {
  if (value.trim() === '') throw new FlagError(`${flag} is empty: name a folder`);
  const path = resolve(value);
  const found = nearestExisting(path);
  if ('problem' in found) throw new FlagError(`${flag} ${value}: ${found.path}: ${found.problem}`);
  if (!found.isDirectory) {
    throw new FlagError(found.path === path
      ? `${flag} ${value}: ${path} is a file, not a folder`
      : `${flag} ${value}: ${found.path} is a file, so no folder can be made under it`);
  }
  if (access === 'write') {
    try {
      accessSync(found.path, constants.W_OK);
    } catch (error) {
      throw new FlagError(`${flag} ${value}: cannot write in ${found.path}: ${describeFsError(error)}`);
    }
  }
  return path;
}

/**
 * The artifact store a command uses: `--store` when given, else found from the
 * pipeline's folder as git finds its repository (`findStore`), then checked
 * (not a file, not under a file, writable when `access` is write). Every
 * command resolves the store here, so how it is found and checked lives in one place.
 */
export function locateStore(values: { readonly store?: string | undefined }, access: Access, pipeline?: string): StoreLocation {
  if (values.store !== undefined) return { root: checkFolderFlag('--store', values.store, access), how: 'given by --store' };
  const found = findStore(undefined, pipeline);
  return { root: checkFolderFlag('the store', found.root, access), how: found.how };
}

/** The root folder of {@link locateStore}'s store. */
export function storeRoot(values: { readonly store?: string | undefined }, access: Access, pipeline?: string): string {
  return locateStore(values, access, pipeline).root;
}

/**
 * Checks a file a flag names for writing (`report -o`): not a folder, its
 * folder not a file, and writable. Returns its absolute path.
 */
export function checkOutputFileFlag(flag: string, value: string): string {
  if (value.trim() === '') throw new FlagError(`${flag} is empty: name a file`);
  const path = resolve(value);
  const found = nearestExisting(path);
  if ('problem' in found) throw new FlagError(`${flag} ${value}: ${found.path}: ${found.problem}`);
  if (found.path === path && found.isDirectory) throw new FlagError(`${flag} ${value}: ${path} is a folder; name the file to write`);
  if (found.path !== path && !found.isDirectory) throw new FlagError(`${flag} ${value}: ${found.path} is a file, so nothing can be written under it`);
  const folder = found.path === path ? dirname(path) : found.path;
  try {
    accessSync(folder, constants.W_OK);
  } catch (error) {
    throw new FlagError(`${flag} ${value}: cannot write in ${folder}: ${describeFsError(error)}`);
  }
  return path;
}

/**
 * Folders local stage modules may be loaded from besides the pipeline's own
 * folder tree: each `--allow-modules DIR`, then SEEDFLOW_MODULE_PATH (folders
 * separated like PATH). Code there runs when a pipeline is validated.
 */
export function moduleRoots(values: { readonly 'allow-modules'?: readonly string[] | undefined }): string[] {
  const fromEnv = (process.env['SEEDFLOW_MODULE_PATH'] ?? '').split(delimiter).filter((p) => p !== '');
  return [...(values['allow-modules'] ?? []), ...fromEnv].map((p) => resolve(p));
}
