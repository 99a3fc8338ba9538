import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { checkArtifact, hashFile, publishArtifact, readManifest, type Manifest, type PublishOutcome } from './artifact.js';
import type { KeyRecord } from './key.js';
import { clearStale, liveHolder, processAlive, StoreFileError, takeExclusive, takeLock, takeShared, tryLock, type LockHolder, type TryLockResult } from './lock.js';

/** The state of an artifact in the store, as `plan` sees it (cheap checks only). */
export type ArtifactState = { readonly state: 'ok' } | { readonly state: 'missing' } | { readonly state: 'damaged'; readonly reason: string };

/** What the store remembers of an instance's last successful build, to explain why it must run again. */
export interface IndexEntry {
  readonly key: string;
  readonly record: KeyRecord;
}

export { StoreFileError, StoreLockedError, type LockHolder, type TryLockResult } from './lock.js';

function isIndexEntry(value: unknown): value is IndexEntry {
  if (value === null || typeof value !== 'object') return false;
  const v = value as { key?: unknown; record?: unknown };
  if (typeof v.key !== 'string' || v.record === null || typeof v.record !== 'object') return false;
  const r = v.record as Record<string, unknown>;
  return typeof r['type'] === 'string' && r['params'] !== null && typeof r['params'] === 'object' && Array.isArray(r['inputs'])
    && r['files'] !== null && typeof r['files'] === 'object';
}

/** Writes a small file atomically: a temporary file in the same folder, then a rename. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  // The writer's pid in the name lets a later run remove what a killed writer left.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

/** An output folder being written, before it becomes an artifact. */
export interface Draft {
  /** An empty folder of the executing machine's own, for the stage's files. */
  readonly dir: string;
  /** Checksums the folder, writes the manifest and makes it the key's artifact (see publishArtifact). */
  publish(fields: Omit<Manifest, 'files' | 'format'>): Promise<{ readonly manifest: Manifest; readonly outcome: PublishOutcome }>;
  /** Removes the folder (the stage failed). */
  discard(): Promise<void>;
}

/**
 * What executing and scheduling need of a store, by artifact key only: no
 * caller builds a path into it. Executors check, open, draft and publish;
 * only a coordinator (a run holding the store) claims keys, moves a damaged
 * artifact aside (while holding its claim) and writes the index.
 */
export interface ArtifactStore {
  /** Cheap check (manifest, sizes, times): what `plan` shows. */
  state(key: string): Promise<ArtifactState>;
  /** Full check against the checksums; the reason it cannot be trusted, or null. */
  verify(key: string): Promise<string | null>;
  /** A published artifact's manifest. */
  manifest(key: string): Promise<Manifest>;
  /** Where a published artifact's files can be read on this machine. */
  open(key: string): Promise<{ readonly dir: string; readonly manifest: Manifest }>;
  /** A fresh folder for the output of the task that makes `key`. */
  draft(key: string): Promise<Draft>;
  /** Moves an artifact aside so its key can be computed again (coordinator only, holding the key's claim). */
  quarantine(key: string): Promise<void>;
  readIndex(pipeline: string): Promise<Map<string, IndexEntry>>;
  /** Adds or replaces these entries of a pipeline's index, keeping the others (another run's among them). */
  writeIndex(pipeline: string, entries: ReadonlyMap<string, IndexEntry>): Promise<void>;
  /** One attempt at the claim on a key: only its holder computes, replaces or moves aside that key's artifact. */
  claim(key: string, command: string): Promise<TryLockResult>;
  /** The live process claiming a key, or null. */
  claimHolder(key: string): Promise<LockHolder | null>;
  /** Takes a run's shared hold on the store (refused or waited for while gc holds it); resolves with its release. */
  hold(command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>>;
  /** Takes the store exclusively (gc), once no run holds it; resolves with its release. */
  lock(command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>>;
}

/**
 * The content-addressed artifact store in a local (or shared) folder:
 *
 *     objects/ab/<key>/      one artifact: its files and manifest.json (written last)
 *     tmp/                   stages' output folders while they run
 *     index/<pipeline>.json  each instance's last key and record, to explain changes
 *     logs/<run>.jsonl       one JSON-lines log per run
 *     file-hashes.json       content hashes of external files, by path, size and time
 *     holds/<pid>-<token>    one per run working on the store (shared)
 *     claims/<key>           held by the one run computing (or replacing) that key
 *     lock                   held by `gc --yes`, which waits until no run holds the store
 */
export class Store implements ArtifactStore {
  /** Artifacts whose files this object has hashed and found sound. */
  private readonly verified = new Set<string>();

  /** `readOnly`: for commands that only read (plan, results): nothing is written, not even the hash cache. */
  constructor(readonly root: string, private readonly options: { readonly readOnly?: boolean } = {}) {}

  /** The folder of the artifact with this key. */
  objectDir(key: string): string {
    return join(this.root, 'objects', key.slice(0, 2), key);
  }

  async draft(key: string): Promise<Draft> {
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    // The pid in the name: a later run removes the drafts of processes that are gone.
    const dir = await mkdtemp(join(this.root, 'tmp', `${key.slice(0, 12)}-${process.pid}-`));
    const finalDir = this.objectDir(key);
    return {
      dir,
      publish: async (fields) => {
        const published = await publishArtifact(dir, finalDir, fields);
        // Either copy was just written or just hashed: later checks in this process need not hash it again.
        this.verified.add(key);
        return published;
      },
      discard: () => rm(dir, { recursive: true, force: true }),
    };
  }

  manifest(key: string): Promise<Manifest> {
    return readManifest(this.objectDir(key));
  }

  async open(key: string): Promise<{ readonly dir: string; readonly manifest: Manifest }> {
    const dir = this.objectDir(key);
    return { dir, manifest: await readManifest(dir) };
  }

  quarantine(key: string): Promise<void> {
    return this.remove(key);
  }

  /** Checks an artifact by its manifest, sizes and modification times (hashing only files whose time changed). */
  async state(key: string): Promise<ArtifactState> {
    const dir = this.objectDir(key);
    try {
      await stat(dir);
    } catch {
      return { state: 'missing' };
    }
    const reason = await checkArtifact(dir, 'stat');
    return reason === null ? { state: 'ok' } : { state: 'damaged', reason };
  }

  /**
   * Checks every file of an artifact against its checksum; the reason it is damaged, or null. An
   * artifact this store object has already hashed is checked by size and time only (re-hashing a
   * file whose time changed): a grid reads its split once per stage, and hashing it every time
   * cost more than many of the stages.
   */
  async verify(key: string): Promise<string | null> {
    const hashed = this.verified.has(key);
    const reason = await checkArtifact(this.objectDir(key), hashed ? 'stat' : 'hash');
    if (reason === null) this.verified.add(key);
    else this.verified.delete(key);
    return reason;
  }

  /** Removes an artifact (damaged, or collected by gc). */
  async remove(key: string): Promise<void> {
    // Rename first so a reader never sees a half-deleted folder with its manifest still in place.
    this.verified.delete(key);
    const dir = this.objectDir(key);
    const doomed = join(this.root, 'tmp', `deleted-${key.slice(0, 12)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    try {
      await rename(dir, doomed);
    } catch {
      return;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** The keys of every artifact in the store. */
  async keys(): Promise<string[]> {
    const out: string[] = [];
    let prefixes: string[];
    try {
      prefixes = await readdir(join(this.root, 'objects'));
    } catch {
      return out;
    }
    for (const prefix of prefixes) out.push(...(await readdir(join(this.root, 'objects', prefix))));
    return out.sort();
  }

  /** The bytes an artifact takes. */
  async size(key: string): Promise<number> {
    let total = 0;
    for (const entry of await readdir(this.objectDir(key), { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
    }
    return total;
  }

  private indexFile(pipeline: string): string {
    return join(this.root, 'index', `${pipeline}.json`);
  }

  /** The last build of each instance of a pipeline, by instance id. */
  async readIndex(pipeline: string): Promise<Map<string, IndexEntry>> {
    try {
      const data = JSON.parse(await readFile(this.indexFile(pipeline), 'utf8')) as unknown;
      if (data === null || typeof data !== 'object' || Array.isArray(data)) return new Map();
      // The index only explains why something runs again: an entry of the wrong shape is forgotten, never trusted.
      return new Map(Object.entries(data as Record<string, unknown>).filter((e): e is [string, IndexEntry] => isIndexEntry(e[1])));
    } catch {
      return new Map();
    }
  }

  /**
   * Records instances' builds in a pipeline's index, merged with what it holds
   * now: read, merge and write happen under the index's own short lock, so two
   * runs adding entries at once never lose each other's.
   */
  async writeIndex(pipeline: string, entries: ReadonlyMap<string, IndexEntry>): Promise<void> {
    await mkdir(join(this.root, 'index'), { recursive: true });
    const file = this.indexFile(pipeline);
    const release = await takeLock(`${file}.lock`, 'index write', { wait: true });
    try {
      const merged = await this.readIndex(pipeline);
      for (const [id, entry] of entries) merged.set(id, entry);
      await writeFileAtomic(file, JSON.stringify(Object.fromEntries(merged), null, 1));
    } finally {
      await release();
    }
  }

  /**
   * Content hashes of external files, reusing the hash of a file whose size
   * and modification time are unchanged since it was last hashed.
   */
  async hashFiles(paths: readonly string[]): Promise<Record<string, string>> {
    const cacheFile = join(this.root, 'file-hashes.json');
    const cache = new Map<string, { size: number; mtimeMs: number; sha256: string }>();
    try {
      const data = JSON.parse(await readFile(cacheFile, 'utf8')) as unknown;
      if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
        for (const [path, v] of Object.entries(data as Record<string, { size?: unknown; mtimeMs?: unknown; sha256?: unknown } | null>)) {
          if (v !== null && typeof v === 'object' && typeof v.size === 'number' && typeof v.mtimeMs === 'number' && typeof v.sha256 === 'string') {
            cache.set(path, { size: v.size, mtimeMs: v.mtimeMs, sha256: v.sha256 });
          }
        }
      }
    } catch {
      // No cache yet (or an unreadable one): every file is hashed.
    }
    let changed = false;
    const out: Record<string, string> = {};
    for (const path of paths) {
      const info = await stat(path);
      const known = cache.get(path);
      if (known !== undefined && known.size === info.size && known.mtimeMs === info.mtimeMs) {
        out[basename(path)] = known.sha256;
        continue;
      }
      const sha256 = await hashFile(path);
      cache.set(path, { size: info.size, mtimeMs: info.mtimeMs, sha256 });
      out[basename(path)] = sha256;
      changed = true;
    }
    if (changed && this.options.readOnly !== true) {
      // Only a cache: a store that cannot take it (read-only, full, cleaned by a run taking the lock) hashes again next time.
      await mkdir(this.root, { recursive: true }).then(() => writeFileAtomic(cacheFile, JSON.stringify(Object.fromEntries(cache), null, 1))).catch(() => undefined);
    }
    return out;
  }

  /** The folder for run logs. */
  async logDir(): Promise<string> {
    const dir = join(this.root, 'logs');
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw new StoreFileError(dir, `cannot be used as the store's log folder (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'it must be a folder seedflow can write into');
    }
    return dir;
  }

  private claimFile(key: string): string {
    return join(this.root, 'claims', key);
  }

  async claim(key: string, command: string): Promise<TryLockResult> {
    await mkdir(join(this.root, 'claims'), { recursive: true });
    const result = await tryLock(this.claimFile(key), command);
    // Drafts of this key are all ours now: any other was left by a process that died computing it.
    if (result.kind === 'taken') await this.removeLeftovers(join(this.root, 'tmp'), (name) => name.startsWith(`${key.slice(0, 12)}-`));
    return result;
  }

  claimHolder(key: string): Promise<LockHolder | null> {
    return liveHolder(this.claimFile(key));
  }

  /**
   * Takes a run's shared hold on the store (see takeShared): any number of runs
   * work at once, each claiming the keys it computes; only `gc --yes` excludes
   * them. What processes that are gone left behind (their drafts, temporary
   * files and claims) is removed.
   */
  async hold(command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>> {
    await mkdir(this.root, { recursive: true });
    const release = await takeShared(join(this.root, 'holds'), join(this.root, 'lock'), command, options);
    const dead = (name: string, pid: string | undefined): boolean => pid !== undefined && /^\d+$/.test(pid) && !processAlive(Number(pid));
    // Drafts are KEY12-PID-RANDOM and deleted-KEY12-PID-RANDOM; temporary files FILE.PID.RANDOM.tmp.
    await this.removeLeftovers(join(this.root, 'tmp'), (name) => dead(name, name.split('-').at(-2)));
    for (const folder of [this.root, join(this.root, 'index')]) {
      await this.removeLeftovers(folder, (name) => name.endsWith('.tmp') && dead(name, name.split('.').at(-3)));
    }
    for (const name of await readdir(join(this.root, 'claims')).catch(() => [] as string[])) await clearStale(join(this.root, 'claims', name));
    return release;
  }

  /**
   * Takes the store exclusively (see takeExclusive), for `gc --yes`: no run
   * holds it, so `tmp/`, the store's temporary files and every claim are
   * leftovers, and go.
   */
  async lock(command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>> {
    await mkdir(this.root, { recursive: true });
    const release = await takeExclusive(join(this.root, 'lock'), join(this.root, 'holds'), command, options);
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    for (const folder of [this.root, join(this.root, 'index')]) await this.removeLeftovers(folder, (name) => name.endsWith('.tmp'));
    for (const name of await readdir(join(this.root, 'claims')).catch(() => [] as string[])) await clearStale(join(this.root, 'claims', name));
    return release;
  }

  /** Removes the entries of a folder whose names `doomed` picks (a missing folder has none). */
  private async removeLeftovers(folder: string, doomed: (name: string) => boolean): Promise<void> {
    for (const name of await readdir(folder).catch(() => [] as string[])) {
      if (doomed(name)) await rm(join(folder, name), { recursive: true, force: true });
    }
  }
}
