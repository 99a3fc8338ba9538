import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile, open } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
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

/** One upstream stage's contribution to an artifact, kept in its manifest. */
export interface LineageEntry {
  readonly type: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  readonly summary: JsonValue;
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

/** What is wrong with a parsed manifest's shape, or null when it has the fields every reader relies on. */
export function manifestProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'it is not a JSON object';
  const m = value as Record<string, unknown>;
  if (m['format'] !== 1) return `format ${JSON.stringify(m['format'] ?? null)} is not 1`;
  for (const field of ['key', 'stage', 'type'] as const) if (typeof m[field] !== 'string') return `"${field}" is not a string`;
  for (const field of ['matrix', 'files'] as const) {
    const v = m[field];
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return `"${field}" is not an object`;
  }
  if (m['lineage'] !== undefined && (m['lineage'] === null || typeof m['lineage'] !== 'object')) return '"lineage" is not an object';
  for (const [name, entry] of Object.entries(m['files'] as Record<string, unknown>)) {
    const e = entry as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object' || typeof e['size'] !== 'number' || typeof e['sha256'] !== 'string' || typeof e['mtimeMs'] !== 'number') {
      return `the entry of file ${JSON.stringify(name)} lacks size, sha256 or mtimeMs`;
    }
    if (name.split(/[\\/]/).includes('..') || isAbsolute(name)) return `file name ${JSON.stringify(name)} leaves the artifact`;
  }
  return null;
}

/** Reads and checks an artifact's manifest: the manifest, or why it cannot be used. */
async function loadManifest(dir: string): Promise<Manifest | string> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8'));
  } catch {
    return 'manifest missing or unreadable';
  }
  const problem = manifestProblem(value);
  return problem === null ? (value as Manifest) : `manifest malformed: ${problem}`;
}

/** Why an artifact cannot be trusted, or null when it is sound. */
export async function checkArtifact(dir: string, mode: 'stat' | 'hash'): Promise<string | null> {
  const manifest = await loadManifest(dir);
  if (typeof manifest === 'string') return manifest;
  for (const [name, entry] of Object.entries(manifest.files)) {
    const file = join(dir, name);
    let info;
    try {
      info = await stat(file);
    } catch {
      return `file ${name} is missing`;
    }
    if (!info.isFile()) return `file ${name} is not a regular file`;
    if (info.size !== entry.size) return `file ${name} has ${info.size} bytes, expected ${entry.size}`;
    // Like git's index: a file whose size and time are unchanged is taken as unchanged unless asked to hash.
    if (mode === 'hash' || info.mtimeMs !== entry.mtimeMs) {
      if ((await hashFile(file)) !== entry.sha256) return `file ${name} does not match its checksum`;
    }
  }
  return null;
}

/** Reads an artifact's manifest; one that is missing or malformed is an error naming the artifact's folder. */
export async function readManifest(dir: string): Promise<Manifest> {
  const manifest = await loadManifest(dir);
  if (typeof manifest === 'string') throw new Error(`${dir}: ${manifest}`);
  return manifest;
}

/** What publishing found: this copy became the artifact, or a sound one of the same key was already there. */
export type PublishOutcome = 'published' | 'existing';

/** Another publisher's artifact of the same key is in place but does not verify. */
export class ArtifactConflictError extends Error {
  constructor(readonly dir: string, readonly detail: string) {
    super(`an artifact of the same key is already in place but damaged (${detail})`);
    this.name = 'ArtifactConflictError';
  }
}

/**
 * Publishes a finished output folder: checksums every file, writes the
 * manifest last, then renames the folder into place. A reader never sees a
 * folder with a manifest whose files are incomplete.
 *
 * Race-free without a lock: renaming a folder onto a non-empty one fails, so of
 * several publishers of one key the first complete copy wins atomically, and
 * nothing already published is ever removed here. A later publisher hashes the
 * winner and discards its own copy; a winner that does not verify is left in
 * place for the coordinator to move aside (ArtifactConflictError).
 */
export async function publishArtifact(
  tmpDir: string,
  finalDir: string,
  fields: Omit<Manifest, 'files' | 'format'>,
): Promise<{ readonly manifest: Manifest; readonly outcome: PublishOutcome }> {
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
  try {
    await rename(tmpDir, finalDir);
    return { manifest, outcome: 'published' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
  await rm(tmpDir, { recursive: true, force: true });
  const problem = await checkArtifact(finalDir, 'hash');
  if (problem !== null) throw new ArtifactConflictError(finalDir, problem);
  return { manifest: await readManifest(finalDir), outcome: 'existing' };
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
