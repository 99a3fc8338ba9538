import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { LineageEntry } from '../stages/types.js';
import type { JsonValue } from '../util/json.js';
import type { KeyRecord } from './key.js';

/** The name of the file that marks an artifact complete; it is written last. */
export const MANIFEST = 'manifest.json';

/** One file of an artifact, as recorded in its manifest. */
export interface FileEntry {
  readonly size: number;
  readonly sha256: string;
  /** Modification time when published: an unchanged size and time skip re-hashing on `plan`. */
  readonly mtimeMs: number;
}

/** The manifest of a published artifact: what made it and what it holds. */
export interface Manifest {
  readonly format: 1;
  readonly key: string;
  /** The stage id and the matrix values of the instance that produced it. */
  readonly stage: string;
  /** The stage's type (`uses`). */
  readonly type: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  /** The documented record whose canonical hash is `key`. */
  readonly record: KeyRecord | null;
  /** What the stage's `run` returned. */
  readonly summary: JsonValue;
  /** Summaries of this and every upstream stage, by stage id (empty for a gathering stage). */
  readonly lineage: Readonly<Record<string, LineageEntry>>;
  readonly files: Readonly<Record<string, FileEntry>>;
  readonly createdAt: string;
  readonly durationMs: number;
}

/** Hex SHA-256 of a file's content, streamed. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Why an artifact cannot be trusted, or null when it is sound. */
export async function checkArtifact(dir: string, mode: 'stat' | 'hash'): Promise<string | null> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return 'manifest missing or unreadable';
  }
  for (const [name, entry] of Object.entries(manifest.files)) {
    const file = join(dir, name);
    let info;
    try {
      info = await stat(file);
    } catch {
      return `file ${name} is missing`;
    }
    if (info.size !== entry.size) return `file ${name} has ${info.size} bytes, expected ${entry.size}`;
    // Like git's index: a file whose size and time are unchanged is taken as unchanged unless asked to hash.
    if (mode === 'hash' || info.mtimeMs !== entry.mtimeMs) {
      if ((await hashFile(file)) !== entry.sha256) return `file ${name} does not match its checksum`;
    }
  }
  return null;
}

/** Reads an artifact's manifest. */
export async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest;
}

/**
 * Publishes a finished output folder: checksums every file, writes the
 * manifest last, then renames the folder into place. A reader never sees a
 * folder with a manifest whose files are incomplete.
 */
export async function publishArtifact(
  tmpDir: string,
  finalDir: string,
  fields: Omit<Manifest, 'files' | 'format'>,
): Promise<Manifest> {
  const files: Record<string, FileEntry> = {};
  for (const name of (await readdir(tmpDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())) {
    const rel = join(name.parentPath ?? (name as unknown as { path: string }).path, name.name).slice(tmpDir.length + 1);
    if (rel === MANIFEST) continue;
    const file = join(tmpDir, rel);
    await fsyncFile(file);
    const info = await stat(file);
    files[rel] = { size: info.size, sha256: await hashFile(file), mtimeMs: info.mtimeMs };
  }
  const manifest: Manifest = { format: 1, ...fields, files };
  await writeFile(join(tmpDir, MANIFEST), JSON.stringify(manifest, null, 2));
  await fsyncFile(join(tmpDir, MANIFEST));
  await mkdir(join(finalDir, '..'), { recursive: true });
  // Same key, same content: a sound artifact already in place (published by another process) is kept.
  if ((await checkArtifact(finalDir, 'hash')) === null) {
    await rm(tmpDir, { recursive: true, force: true });
    return readManifest(finalDir);
  }
  await rm(finalDir, { recursive: true, force: true });
  await rename(tmpDir, finalDir);
  return manifest;
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
