import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** Who holds a store's lock, as written in the lock file. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly startedAt: string;
  /** Unique to one taking of the lock, so a release never removes someone else's lock. */
  readonly token?: string;
  /** The holder's start time in clock ticks since boot (Linux), so a reused pid is not taken for the holder. */
  readonly bootTicks?: number;
}

/** The store is locked by another live process. */
export class StoreLockedError extends Error {
  constructor(readonly holder: LockHolder, readonly lockFile: string) {
    super(`the store is in use by process ${holder.pid} on ${holder.host} ("${holder.command}", since ${holder.startedAt})`);
    this.name = 'StoreLockedError';
  }
}

/** A store file or folder that seedflow cannot use as it is: the message names the path and what to do. */
export class StoreFileError extends Error {
  constructor(readonly path: string, message: string, readonly hint?: string) {
    super(`${path}: ${message}`);
    this.name = 'StoreFileError';
  }
}

/** A lock file younger than this that cannot be parsed is being written; older, it was left by a killed writer. */
const UNPARSEABLE_GRACE_MS = 5000;

/** Field 22 of /proc/PID/stat (start time) and field 3 (state), or null where there is no /proc. */
function procStat(pid: number): { readonly state: string; readonly start: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** Whether the process that wrote `holder` is still running (on this host; another host's holder is taken as alive). */
function holderAlive(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const info = procStat(holder.pid);
  if (info === null) return true;
  // A killed process stays a zombie until its parent reaps it: it holds nothing any more.
  if (info.state === 'Z' || info.state === 'X') return false;
  return holder.bootTicks === undefined || holder.bootTicks === info.start;
}

function isHolder(value: unknown): value is LockHolder {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  return Number.isSafeInteger(v['pid']) && (v['pid'] as number) > 0 && typeof v['host'] === 'string'
    && typeof v['command'] === 'string' && typeof v['startedAt'] === 'string';
}

type LockState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'busy' }
  | { readonly kind: 'live'; readonly holder: LockHolder }
  | { readonly kind: 'stale'; readonly text: string };

/** Reads a lock file: missing, being written, held by a live process, or stale (its holder is gone, or it is not a lock). */
async function readLock(file: string): Promise<LockState> {
  let info;
  try {
    info = await lstat(file);
  } catch {
    return { kind: 'missing' };
  }
  if (!info.isFile()) {
    throw new StoreFileError(file, `the lock is not a file (${info.isDirectory() ? 'a folder' : 'a special file'})`, 'remove it if no seedflow process is using the store');
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { kind: 'missing' };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isHolder(parsed)) {
    // Being written right now, or left empty (or not ours) by a process killed between open and write.
    const age = Date.now() - info.mtimeMs;
    return age > UNPARSEABLE_GRACE_MS ? { kind: 'stale', text } : { kind: 'busy' };
  }
  return holderAlive(parsed) ? { kind: 'live', holder: parsed } : { kind: 'stale', text };
}

/** Creates `file` holding `holder` if it does not exist; false when it does. */
async function create(file: string, holder: LockHolder): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(holder));
  } catch (error) {
    // A full disk leaves the lock empty: it is ours, and no one else may wait on it for the grace.
    await handle.close();
    await rm(file, { force: true });
    throw error;
  }
  await handle.close();
  return true;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Removes a stale lock, once, whoever else is trying at the same moment. A
 * takeover is itself guarded by a second lock file (`lock.takeover`): only its
 * holder may remove the main lock, and only if the main lock still holds the
 * stale text it saw, so two contenders never both remove a lock and both
 * create their own. A takeover file whose holder is dead is removed.
 */
async function takeOver(file: string, me: LockHolder): Promise<void> {
  const guard = `${file}.takeover`;
  if (!(await create(guard, me))) {
    const state = await readLock(guard);
    if (state.kind === 'stale' && (await readFile(guard, 'utf8').catch(() => null)) === state.text) await rm(guard, { force: true });
    else await pause(20);
    return;
  }
  try {
    const seen = await readLock(file);
    // Only for the tests: stop here so another contender can be run in the middle of a takeover.
    if (process.env['SEEDFLOW_TEST_PAUSE_IN_TAKEOVER'] === '1') process.kill(process.pid, 'SIGSTOP');
    if (seen.kind === 'stale' && (await readFile(file, 'utf8').catch(() => null)) === seen.text) await rm(file, { force: true });
  } finally {
    await rm(guard, { force: true });
  }
}

/** What one attempt at a lock file gave: the lock, with its release, or the live process holding it. */
export type TryLockResult =
  | { readonly kind: 'taken'; readonly release: () => Promise<void> }
  | { readonly kind: 'held'; readonly holder: LockHolder };

/** A description of this process as a lock holder, with a token unique to one taking. */
export function holderOf(command: string): LockHolder {
  const stat = procStat(process.pid);
  return {
    pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString(), token: randomBytes(8).toString('hex'),
    ...(stat !== null ? { bootTicks: stat.start } : {}),
  };
}

/** Removes `file` only while it still holds `me` (its token), so a release never removes someone else's lock. */
async function releaser(file: string, me: LockHolder): Promise<void> {
  try {
    const holder = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (isHolder(holder) && holder.token === me.token) await rm(file, { force: true });
  } catch {
    // Already gone.
  }
}

/**
 * One attempt at a lock file, without waiting for a live holder: creates it
 * exclusively, or takes over a dead holder's (see takeOver), or answers who
 * holds it. A file being written (or malformed and younger than its grace) is
 * re-read until it is one or the other.
 */
export async function tryLock(file: string, command: string | LockHolder): Promise<TryLockResult> {
  const me = typeof command === 'string' ? holderOf(command) : command;
  for (;;) {
    if (await create(file, me)) return { kind: 'taken', release: () => releaser(file, me) };
    const state = await readLock(file);
    if (state.kind === 'missing') continue;
    if (state.kind === 'busy') {
      await pause(50);
      continue;
    }
    if (state.kind === 'stale') {
      await takeOver(file, me);
      continue;
    }
    return { kind: 'held', holder: state.holder };
  }
}

/**
 * Who holds a lock file, if a live process does: null when it is free or its
 * holder is dead (without taking it). A file being written is re-read.
 */
export async function liveHolder(file: string): Promise<LockHolder | null> {
  for (;;) {
    const state = await readLock(file);
    if (state.kind === 'busy') {
      await pause(50);
      continue;
    }
    return state.kind === 'live' ? state.holder : null;
  }
}

/** Whether a process of this host is running (not gone, not a zombie); for files named after their writer's pid. */
export function processAlive(pid: number): boolean {
  return holderAlive({ pid, host: hostname(), command: '', startedAt: '' });
}

/**
 * Takes a lock file. A live holder makes this wait (polling) when `wait` is
 * set, or throw StoreLockedError; a dead holder's lock is taken over.
 * Resolves with the release, which removes the lock only while it is still ours.
 */
export async function takeLock(file: string, command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>> {
  const me = holderOf(command);
  let told = false;
  for (;;) {
    const attempt = await tryLock(file, me);
    if (attempt.kind === 'taken') return attempt.release;
    if (!options.wait) throw new StoreLockedError(attempt.holder, file);
    if (!told) options.onWait?.(attempt.holder);
    told = true;
    await pause(250);
  }
}

/**
 * Removes a lock file if its holder is dead, under the same guard as a
 * take-over, so a lock someone has just taken over is never removed.
 */
export async function clearStale(file: string): Promise<void> {
  const state = await readLock(file).catch(() => null);
  if (state?.kind === 'stale') await takeOver(file, holderOf('cleanup'));
}

/** The live holders of the lock files in a folder; dead holders' files are removed on the way. */
export async function liveHolders(dir: string): Promise<{ readonly file: string; readonly holder: LockHolder }[]> {
  const out: { file: string; holder: LockHolder }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = join(dir, name);
    const holder = await liveHolder(file).catch(() => null);
    if (holder !== null) out.push({ file, holder });
    else await clearStale(file);
  }
  return out;
}

/**
 * Takes a shared hold on a store: a file of this process's own in `holdsDir`,
 * kept only while no live process holds `exclusiveFile`. The hold is written
 * before the exclusive lock is read, and the exclusive holder writes its lock
 * before it reads the holds, so of the two at least one sees the other.
 * A live exclusive holder makes this wait when `wait` is set, or throw StoreLockedError.
 */
export async function takeShared(holdsDir: string, exclusiveFile: string, command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>> {
  const me = holderOf(command);
  const file = join(holdsDir, `${me.pid}-${me.token ?? ''}`);
  await mkdir(holdsDir, { recursive: true });
  let told = false;
  for (;;) {
    await create(file, me);
    const holder = await liveHolder(exclusiveFile);
    if (holder === null) return () => releaser(file, me);
    await rm(file, { force: true });
    if (!options.wait) throw new StoreLockedError(holder, exclusiveFile);
    if (!told) options.onWait?.(holder);
    told = true;
    await pause(250);
  }
}

/**
 * Takes a store's exclusive lock (see takeLock), then waits until no live
 * process holds a shared hold in `holdsDir` (or, without `wait`, gives the
 * lock back and throws StoreLockedError naming one of them).
 */
export async function takeExclusive(file: string, holdsDir: string, command: string, options: { wait: boolean; onWait?: (holder: LockHolder) => void }): Promise<() => Promise<void>> {
  const release = await takeLock(file, command, options);
  let told = false;
  for (;;) {
    const holds = await liveHolders(holdsDir);
    const first = holds[0];
    if (first === undefined) return release;
    if (!options.wait) {
      await release();
      throw new StoreLockedError(first.holder, first.file);
    }
    if (!told) options.onWait?.(first.holder);
    told = true;
    await pause(250);
  }
}
