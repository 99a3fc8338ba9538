import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Store } from '../src/cache/store.js';
import { tempDir } from './support/stage-harness.js';

const LOCKER = join(dirname(fileURLToPath(import.meta.url)), 'support', 'locker.js');

/** A lock file whose holder cannot be running (a pid above Linux's largest). */
const staleLock = JSON.stringify({ pid: 2 ** 22 + 4321, host: hostname(), command: 'seedflow run', startedAt: '2026-01-01T00:00:00.000Z' });

function locker(root: string, env: NodeJS.ProcessEnv = {}): { child: ChildProcess; answer: Promise<string> } {
  const child = fork(LOCKER, [root], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const answer = new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(String(m)));
    child.once('exit', (code) => reject(new Error(`locker exited with ${String(code)} without answering`)));
  });
  return { child, answer };
}

function state(pid: number): string {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? '';
  } catch {
    return '';
  }
}

/** Polls, bounded, until a condition holds. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the store lock', () => {
  it('two processes taking over one stale lock, one paused inside the take-over, never both hold the store', { timeout: 60_000 }, async () => {
    const root = await tempDir('seedflow-lock-');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'lock'), staleLock);
    // A stops itself (SIGSTOP) in the middle of its take-over.
    const a = locker(root, { SEEDFLOW_TEST_PAUSE_IN_TAKEOVER: '1' });
    const pid = a.child.pid ?? 0;
    await until(() => state(pid) === 'T', 'the first contender is paused in its take-over');
    const b = locker(root);
    // While A is inside the take-over, B must not get the store. Watched for a bounded while: a correct lock never
    // gives it, whatever the timing; the old rename-based take-over gave it within milliseconds.
    const early = await Promise.race([b.answer, new Promise<string>((r) => setTimeout(() => r('nothing yet'), 1000))]);
    assert.notEqual(early, 'locked', 'the second contender took the store while the first was inside its take-over');
    process.kill(pid, 'SIGCONT');
    const answers = await Promise.all([a.answer, b.answer]);
    assert.deepEqual([...answers].sort(), ['locked', 'locked-out'], `answers: ${answers.join(', ')}`);
    const holder = answers[0] === 'locked' ? a.child : b.child;
    const exited = new Promise((r) => holder.once('exit', r));
    holder.send('release');
    await exited;
  });

  it('a folder at the lock path is a clear error naming it, not a hang', async () => {
    const root = await tempDir('seedflow-lock-');
    await mkdir(join(root, 'lock'), { recursive: true });
    await assert.rejects(new Store(root).lock('test', { wait: false }), (error: Error) => {
      assert.match(error.message, /lock: the lock is not a file \(a folder\)/);
      return true;
    });
  });

  it('a lock of the wrong shape, left long ago, is taken over; a fresh one is waited for', async () => {
    const root = await tempDir('seedflow-lock-');
    const file = join(root, 'lock');
    await mkdir(root, { recursive: true });
    await writeFile(file, 'null');
    const { utimes } = await import('node:fs/promises');
    await utimes(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const release = await new Store(root).lock('test', { wait: false });
    const holder = JSON.parse(readFileSync(file, 'utf8')) as { pid: number };
    assert.equal(holder.pid, process.pid);
    await release();
  });

  it('a release removes only its own lock', async () => {
    const root = await tempDir('seedflow-lock-');
    const store = new Store(root);
    const release = await store.lock('test', { wait: false });
    const file = join(root, 'lock');
    const other = JSON.stringify({ pid: process.pid, host: hostname(), command: 'other', startedAt: 'now', token: 'someone-else' });
    await writeFile(file, other);
    await release();
    assert.equal(readFileSync(file, 'utf8'), other);
  });
});
