/**
 * What the submitting side and the workers of a BullMQ run share: the queue's
 * address, the queue's name (one per store), the content shipped into the
 * store by hash, and the messages a job carries.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { RedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { StageProgress } from '../stages/types.js';
import type { Failure } from './failure.js';
import { QueueError } from './queue-error.js';
import { locate, type Located, type Task, type TaskOutcome } from './task.js';


/** Where the queue's Redis is: `redis://HOST:PORT[/DB]`. */
export interface QueueAddress {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly db: number;
}

/** Reads a `redis://HOST:PORT[/DB]` URL, or throws a QueueError naming what is wrong. */
export function parseQueueUrl(url: string): QueueAddress {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueError(`--queue ${url}: not a URL`, 'write redis://HOST:PORT or redis://HOST:PORT/DB');
  }
  if (parsed.protocol !== 'redis:') throw new QueueError(`--queue ${url}: the scheme must be redis://`, 'write redis://HOST:PORT or redis://HOST:PORT/DB');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  const path = parsed.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (parsed.hostname === '') throw new QueueError(`--queue ${url}: no host`);
  if (!Number.isInteger(db) || db < 0 || db > 15) throw new QueueError(`--queue ${url}: the database must be a number from 0 to 15, not "${path}"`);
  return { url, host: parsed.hostname, port, db };
}

/**
 * Connection options for BullMQ's own connections. `persistent` ones (a
 * worker's) reconnect for ever; a submitter's give up after a few seconds so a
 * lost Redis stops the run instead of hanging it.
 */
export function connectionOptions(address: QueueAddress, persistent: boolean): RedisOptions {
  return {
    host: address.host, port: address.port, db: address.db,
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => (!persistent && times > 10 ? null : Math.min(times * 100, 1000)),
  };
}

/** Connects and pings once, within `timeoutMs`; throws a QueueError naming the URL when Redis does not answer. */
export async function reach(address: QueueAddress, timeoutMs = 5000): Promise<Redis> {
  const client = new Redis({ host: address.host, port: address.port, db: address.db, lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Errors are reported through connect()'s rejection; this keeps ioredis from printing them.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    client.disconnect();
    throw new QueueError(`cannot reach the queue at ${address.url}: ${error instanceof Error ? error.message : String(error)}`, 'start redis-server there, or pass the right --queue (or SEEDFLOW_QUEUE)');
  }
}

/**
 * Lets a client from `reach` reconnect after a blip (every half second at
 * most), while commands sent meanwhile fail at once instead of waiting: what a
 * watchdog or a heartbeat wants.
 */
export function keepReconnecting(client: Redis): Redis {
  client.options.retryStrategy = (times: number) => Math.min(times * 100, 500);
  client.options.enableOfflineQueue = false;
  return client;
}

/**
 * The store's identity, made once (race-free: the first to link its file wins)
 * and read by every machine, whatever path it sees the store through. The
 * queue of a store is named after it.
 */
export async function storeId(root: string): Promise<string> {
  const file = join(root, 'store-id');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    await mkdir(root, { recursive: true });
    const draft = join(root, `.store-id.${randomUUID()}`);
    await writeFile(draft, `${randomUUID()}\n`);
    await link(draft, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await rm(draft, { force: true });
    return (await readFile(file, 'utf8')).trim();
  }
}

/** The BullMQ queue of a store. */
export function queueName(id: string): string {
  return `seedflow-${id}`;
}

/** The Redis key under which a live worker announces itself (expires unless renewed). */
export function workerKey(queue: string, name: string): string {
  return `seedflow:worker:${queue}:${name}`;
}

/** What a live worker says of itself. */
export interface WorkerInfo {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly backend: string;
  readonly seedflow: string;
  readonly jobs: number;
}

/** A job's data: the task alone (its content is shipped into the store by hash). */
export interface JobData {
  readonly task: Task;
}

/** What a job reports while it runs (through BullMQ's progress channel). */
export type JobNote =
  | { readonly kind: 'log'; readonly level: 'debug' | 'info' | 'warn'; readonly message: string }
  | { readonly kind: 'progress'; readonly progress: StageProgress }
  | { readonly kind: 'started'; readonly worker: string };

/** A job's return value. */
export type JobResult = TaskOutcome & { readonly worker: string };

/** The marker that starts a failed job's reason when it carries a Failure as JSON. */
export const FAILURE_PREFIX = 'seedflow-failure:';

/** A Failure as a job's failed reason. */
export function encodeFailure(failure: Failure): string {
  return `${FAILURE_PREFIX}${JSON.stringify(failure)}`;
}

const HASH = /^[0-9a-f]{64}$/;
const NAME = /^[^/\\\0]+$/;

/** The folder in a store that holds content shipped by hash. */
export function shippedDir(root: string, sha256: string): string {
  return join(root, 'shipped', sha256);
}

/** The content a task names by hash. */
function contentOf(task: Task): { readonly name: string; readonly sha256: string }[] {
  return [...(task.source.kind === 'module' ? [{ name: task.source.name, sha256: task.source.sha256 }] : []), ...task.files];
}

/**
 * Copies the content a task names by hash into the shared store (a hard link
 * where the file system allows), once per hash: `shipped/<sha256>/<name>`. A
 * copy is written aside and renamed, so a worker never sees half of one.
 */
export async function ship(root: string, task: Task, located: Located): Promise<void> {
  for (const { name, sha256 } of contentOf(task)) {
    const from = locate(located, sha256);
    if (from === undefined || !HASH.test(sha256) || !NAME.test(name) || name === '.' || name === '..') continue;
    const dir = shippedDir(root, sha256);
    const target = join(dir, name);
    if (await stat(target).then(() => true, () => false)) continue;
    await mkdir(dir, { recursive: true });
    const draft = join(dir, `.${name}.${randomUUID()}`);
    await link(from, draft).catch(() => copyFile(from, draft));
    await rename(draft, target);
  }
}

/**
 * Where this process finds the content a task names, among the copies shipped
 * into its store; a name or hash of the wrong shape is simply not found.
 * Modules are checked against their hash by `refusal`, files here, through
 * the store's cache of file hashes.
 */
export async function locateShipped(root: string, task: Task, hashFiles: (paths: readonly string[]) => Promise<Record<string, string>>): Promise<{ readonly located: Located; readonly problems: readonly string[] }> {
  const located: Record<string, string> = {};
  const problems: string[] = [];
  for (const { name, sha256 } of contentOf(task)) {
    if (!HASH.test(sha256) || basename(name) !== name || !NAME.test(name)) continue;
    const path = join(shippedDir(root, sha256), name);
    if (!(await stat(path).then((s) => s.isFile(), () => false))) continue;
    located[sha256] = path;
  }
  for (const { name, sha256 } of task.files) {
    const path = locate(located, sha256);
    if (path === undefined) continue;
    const found = (await hashFiles([path]))[name];
    if (found !== sha256) problems.push(`the shipped copy of ${name} has SHA-256 ${found ?? '?'}, the task expects ${sha256}`);
  }
  return { located, problems };
}
