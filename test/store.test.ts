import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ArtifactConflictError, checkArtifact } from '../src/cache/artifact.js';
import { Store } from '../src/cache/store.js';
import { tempDir } from './support/stage-harness.js';

const PUBLISHER = join(dirname(fileURLToPath(import.meta.url)), 'support', 'publisher.js');

interface Answer {
  readonly key: string;
  readonly outcome?: 'published' | 'existing';
  readonly files?: Record<string, unknown>;
  readonly summary?: { writer: string };
  readonly error?: string;
}

/** Starts a publisher process and resolves once it is listening. */
async function publisher(root: string, name: string): Promise<ChildProcess> {
  const child = fork(PUBLISHER, [root, name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`publisher ${name} exited with ${String(code)} before it was ready`)));
  });
  return child;
}

function answer(child: ChildProcess): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`publisher exited with ${String(code)}`));
    child.once('exit', onExit);
    child.once('message', (message: Answer) => {
      child.off('exit', onExit);
      resolve(message);
    });
  });
}

const key = (round: number): string => `${round.toString(16).padStart(2, '0')}${'ab'.repeat(31)}`;

describe('publishing into the store', () => {
  it('several processes publishing one key at once, many times, leave exactly one sound, unmixed artifact', { timeout: 120_000 }, async () => {
    const root = await tempDir('seedflow-publish-');
    const names = ['p1', 'p2', 'p3', 'p4'];
    const children = await Promise.all(names.map((n) => publisher(root, n)));
    try {
      for (let round = 0; round < 25; round++) {
        // Every publisher is told at once and answers once: the rounds are ordered, the publishers within one race.
        const answers = await Promise.all(children.map((child) => {
          const reply = answer(child);
          child.send({ key: key(round) });
          return reply;
        }));
        for (const a of answers) assert.equal(a.error, undefined, `round ${round}: ${a.error}`);
        assert.equal(answers.filter((a) => a.outcome === 'published').length, 1, `round ${round}: ${JSON.stringify(answers.map((a) => a.outcome))}`);
        const dir = new Store(root).objectDir(key(round));
        assert.equal(await checkArtifact(dir, 'hash'), null, `round ${round}: the artifact does not verify`);
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: unknown; summary: { writer: string } };
        // Whoever won, every publisher reports the winner's artifact, and its files all come from the winner.
        for (const a of answers) {
          assert.deepEqual(a.files, manifest.files);
          assert.deepEqual(a.summary, manifest.summary);
        }
        const writer = manifest.summary.writer;
        for (const file of ['a.bin', 'b.bin']) {
          const text = await readFile(join(dir, file), 'utf8');
          assert.equal(text.split(';').filter((s) => s !== '' && s !== writer).length, 0, `round ${round}: ${file} mixes writers`);
        }
      }
      // Every losing copy was discarded.
      assert.deepEqual(await readdir(join(root, 'tmp')), []);
    } finally {
      for (const child of children) if (child.connected) child.send('exit');
    }
  });

  it('a damaged artifact already in place is neither replaced nor deleted by a publisher', async () => {
    const root = await tempDir('seedflow-publish-');
    const store = new Store(root);
    const k = key(99);
    const first = await store.draft(k);
    await writeFile(join(first.dir, 'x.txt'), 'one');
    await first.publish({ key: k, stage: 's', type: 't', matrix: {}, record: null, summary: null, lineage: {}, createdAt: '', durationMs: 0 });
    await writeFile(join(store.objectDir(k), 'x.txt'), 'two');
    const second = await store.draft(k);
    await writeFile(join(second.dir, 'x.txt'), 'one');
    await assert.rejects(second.publish({ key: k, stage: 's', type: 't', matrix: {}, record: null, summary: null, lineage: {}, createdAt: '', durationMs: 0 }), ArtifactConflictError);
    assert.equal(await readFile(join(store.objectDir(k), 'x.txt'), 'utf8'), 'two');
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    await store.quarantine(k);
    assert.deepEqual(await store.state(k), { state: 'missing' });
  });
});
