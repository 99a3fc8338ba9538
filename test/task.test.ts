import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SEEDFLOW_VERSION, TASK_FORMAT, refusal, type Task } from '../src/executor/task.js';
import { tempDir } from './support/stage-harness.js';

const base: Task = {
  format: TASK_FORMAT, seedflow: SEEDFLOW_VERSION, id: 'cluster[k=10]', stage: 'cluster', matrix: { k: 10 }, type: 'kmeans',
  source: { kind: 'builtin', name: 'kmeans' }, heavy: true, gather: false, params: { k: 10 }, inputs: { split: [{ id: 'split', key: 'a'.repeat(64) }] },
  key: 'b'.repeat(64), record: { format: 1, type: 'kmeans', version: 1, params: { k: 10 }, inputs: ['a'.repeat(64)], files: {}, backend: 'wasm+onnxruntime' },
  files: [], compute: 'wasm+onnxruntime',
};
const here = (compute: string, notes: string[] = []) => async () => ({ compute, notes });

describe('a runner asked to run a task it cannot run as keyed', () => {
  it('runs a task whose version, code and backend match', async () => {
    assert.equal(await refusal(base, here('wasm+onnxruntime')), null);
  });

  it('refuses a task keyed for another backend, naming both and why it fell back', async () => {
    const error = await refusal(base, here('wasm', ['ONNX Runtime could not load']));
    assert.ok(error !== null);
    assert.equal(error.failure.reason, 'refused');
    assert.match(error.message, /keyed for the wasm\+onnxruntime backend, but this process computes on wasm \(ONNX Runtime could not load\)/);
  });

  it('does not ask a task without numeric work for its backend', async () => {
    const asked: string[] = [];
    const error = await refusal({ ...base, compute: null }, async () => {
      asked.push('asked');
      return { compute: 'cpu', notes: [] };
    });
    assert.equal(error, null);
    assert.deepEqual(asked, []);
  });

  it('refuses a task planned by another seedflow version', async () => {
    const error = await refusal({ ...base, seedflow: '0.0.0-other' }, here('wasm+onnxruntime'));
    assert.equal(error?.failure.reason, 'refused');
    assert.match(error?.message ?? '', /planned by seedflow 0\.0\.0-other, this is /);
  });

  it('refuses a local module whose code changed since planning, and runs it while unchanged', async () => {
    const dir = await tempDir();
    const file = join(dir, 'stage.mjs');
    await writeFile(file, 'export const stage = {};\n');
    const sha256 = createHash('sha256').update('export const stage = {};\n').digest('hex');
    const task: Task = { ...base, compute: null, source: { kind: 'module', path: file, sha256 } };
    assert.equal(await refusal(task, here('cpu')), null);
    await writeFile(file, 'export const stage = { changed: true };\n');
    const error = await refusal(task, here('cpu'));
    assert.equal(error?.failure.reason, 'refused');
    assert.match(error?.message ?? '', /changed since the run was planned/);
  });
});
