import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Store } from '../src/cache/store.js';
import { encodeFailure, locateShipped, parseQueueUrl, ship, storeId } from '../src/executor/queue-common.js';
import { failureOfReason } from '../src/executor/queue-runner.js';
import { SEEDFLOW_VERSION, TASK_FORMAT, type Task } from '../src/executor/task.js';
import { parseDuration } from '../src/cli/queue.js';
import { tempDir } from './support/stage-harness.js';
import { createHash } from 'node:crypto';

describe('reading a queue URL', () => {
  const good: [string, { host: string; port: number; db: number }][] = [
    ['redis://127.0.0.1:6380', { host: '127.0.0.1', port: 6380, db: 0 }],
    ['redis://queue-host:6379/3', { host: 'queue-host', port: 6379, db: 3 }],
    ['redis://queue-host', { host: 'queue-host', port: 6379, db: 0 }],
  ];
  for (const [url, expected] of good) {
    it(`reads ${url}`, () => {
      const { host, port, db } = parseQueueUrl(url);
      assert.deepEqual({ host, port, db }, expected);
    });
  }
  const bad: [string, RegExp][] = [
    ['localhost:6379', /scheme must be redis:\/\/|not a URL/],
    ['http://127.0.0.1:6379', /the scheme must be redis:\/\//],
    ['redis://127.0.0.1:6379/x', /database must be a number from 0 to 15, not "x"/],
    ['redis://127.0.0.1:6379/16', /database must be a number from 0 to 15/],
    ['not a url', /not a URL/],
  ];
  for (const [url, message] of bad) {
    it(`refuses ${url}, naming the flag`, () => {
      assert.throws(() => parseQueueUrl(url), (error: Error) => message.test(error.message) && error.message.startsWith(`--queue ${url}`));
    });
  }
});

describe('reading a duration', () => {
  const table: [string, number][] = [['30s', 30_000], ['5m', 300_000], ['500ms', 500], ['2', 2000], ['1h', 3_600_000], ['1.5s', 1500]];
  for (const [text, ms] of table) it(`reads ${text} as ${ms} ms`, () => assert.equal(parseDuration(text, '--idle-exit'), ms));
  it('refuses a duration it cannot read, naming the flag', () => {
    assert.throws(() => parseDuration('soon', '--idle-exit'), /--idle-exit must be a duration such as 30s/);
    assert.throws(() => parseDuration('-1s', '--idle-exit'), /--idle-exit/);
  });
});

describe('a job\'s failed reason', () => {
  it('carries a Failure as data both ways', () => {
    const failure = { reason: 'user-error', message: 'bad labels', hint: 'fix them' } as const;
    assert.deepEqual(failureOfReason(encodeFailure(failure)), failure);
  });
  it('reads BullMQ\'s own stall reason as a lost worker, and anything else as a crash', () => {
    assert.equal(failureOfReason('job stalled more than allowable limit').reason, 'worker-lost');
    assert.deepEqual(failureOfReason('boom'), { reason: 'stage-threw', message: 'boom' });
    assert.equal(failureOfReason('seedflow-failure:{not json').reason, 'stage-threw');
  });
});

describe('content shipped into the store by hash', () => {
  const task = (files: Task['files'], source: Task['source'] = { kind: 'builtin', name: 'dataset' }): Task => ({
    format: TASK_FORMAT, seedflow: SEEDFLOW_VERSION, id: 'data', stage: 'data', matrix: {}, type: 'dataset', source, heavy: false, gather: false,
    params: {}, inputs: {}, key: 'd'.repeat(64), record: { format: 1, type: 'dataset', version: 1, params: {}, inputs: [], files: {} }, files, compute: null,
  });

  it('is found by a worker that sees the store through another path, and refused when a copy differs from its hash', async () => {
    const dir = await tempDir();
    const data = join(dir, 'train.csv');
    await writeFile(data, '1,2,3\n');
    const sha256 = createHash('sha256').update('1,2,3\n').digest('hex');
    const root = join(dir, 'store');
    const t = task([{ name: 'train.csv', sha256 }]);
    await ship(root, t, { [sha256]: data });
    const store = new Store(root);
    const found = await locateShipped(root, t, (paths) => store.hashFiles(paths));
    assert.deepEqual(found.problems, []);
    assert.equal(await readFile(found.located[sha256] ?? '', 'utf8'), '1,2,3\n');
    await writeFile(join(root, 'shipped', sha256, 'train.csv'), 'tampered\n');
    const damaged = await locateShipped(root, t, (paths) => new Store(join(dir, 'other')).hashFiles(paths));
    assert.match(damaged.problems.join(), /shipped copy of train\.csv has SHA-256 [0-9a-f]{64}, the task expects/);
  });

  it('never leaves the shipped folder, whatever name or hash a task carries', async () => {
    const dir = await tempDir();
    const root = join(dir, 'store');
    await mkdir(join(root, 'shipped'), { recursive: true });
    await writeFile(join(dir, 'secret'), 'x');
    const hostile = task([{ name: '../../secret', sha256: 'e'.repeat(64) }, { name: 'secret', sha256: '../..' }], { kind: 'module', name: '__proto__', sha256: 'f'.repeat(64) });
    const found = await locateShipped(root, hostile, async () => ({}));
    assert.deepEqual(Object.keys(found.located), []);
    await ship(root, hostile, { ['../..']: join(dir, 'secret') });
    assert.deepEqual(await readFile(join(dir, 'secret'), 'utf8'), 'x');
  });

  it('names the queue after the store, the same id however the store is reached', async () => {
    const dir = await tempDir();
    const [a, b] = await Promise.all([storeId(join(dir, 's')), storeId(join(dir, 's', '.'))]);
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f-]{36}$/);
  });
});
