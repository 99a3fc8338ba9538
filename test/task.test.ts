import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { describe, it } from 'node:test';
import { SEEDFLOW_VERSION, TASK_FORMAT, refusal, type Task } from '../src/executor/task.js';
import { Store } from '../src/cache/store.js';
import { preparePlan } from '../src/executor/prepare.js';
import { locatedOf, taskOf } from '../src/executor/scheduler.js';
import { InstanceGraph } from '../src/plan/instance-graph.js';
import { STAGES } from './support/rig.js';
import { tempDir } from './support/stage-harness.js';
import { writeTinyIdx } from './support/tiny-data.js';

const base: Task = {
  format: TASK_FORMAT, seedflow: SEEDFLOW_VERSION, id: 'cluster[k=10]', stage: 'cluster', matrix: { k: 10 }, type: 'kmeans',
  source: { kind: 'builtin', name: 'kmeans' }, heavy: true, gather: false, params: { k: 10 }, inputs: { split: [{ id: 'split', key: 'a'.repeat(64), stage: 'split', matrix: {} }] },
  key: 'b'.repeat(64), record: { format: 1, type: 'kmeans', version: 1, params: { k: 10 }, inputs: ['a'.repeat(64)], files: {}, backend: 'wasm+onnxruntime' },
  files: [], compute: 'wasm+onnxruntime',
};
const here = (compute: string, notes: string[] = []) => async () => ({ compute, notes });

describe('a runner asked to run a task it cannot run as keyed', () => {
  it('runs a task whose version, code and backend match', async () => {
    assert.equal(await refusal(base, {}, here('wasm+onnxruntime')), null);
  });

  it('refuses a task keyed for another backend, naming both and why it fell back', async () => {
    const error = await refusal(base, {}, here('wasm', ['ONNX Runtime could not load']));
    assert.ok(error !== null);
    assert.equal(error.failure.reason, 'refused');
    assert.match(error.message, /keyed for the wasm\+onnxruntime backend, but this process computes on wasm \(ONNX Runtime could not load\)/);
  });

  it('does not ask a task without numeric work for its backend', async () => {
    const asked: string[] = [];
    const error = await refusal({ ...base, compute: null }, {}, async () => {
      asked.push('asked');
      return { compute: 'cpu', notes: [] };
    });
    assert.equal(error, null);
    assert.deepEqual(asked, []);
  });

  it('refuses a task planned by another seedflow version', async () => {
    const error = await refusal({ ...base, seedflow: '0.0.0-other' }, {}, here('wasm+onnxruntime'));
    assert.equal(error?.failure.reason, 'refused');
    assert.match(error?.message ?? '', /planned by seedflow 0\.0\.0-other, this is /);
  });

  it('refuses a local module whose code changed since planning, and runs it while unchanged', async () => {
    const dir = await tempDir();
    const file = join(dir, 'stage.mjs');
    await writeFile(file, 'export const stage = {};\n');
    const sha256 = createHash('sha256').update('export const stage = {};\n').digest('hex');
    const task: Task = { ...base, compute: null, source: { kind: 'module', name: 'stage.mjs', sha256 } };
    assert.equal(await refusal(task, { [sha256]: file }, here('cpu')), null);
    await writeFile(file, 'export const stage = { changed: true };\n');
    const error = await refusal(task, { [sha256]: file }, here('cpu'));
    assert.equal(error?.failure.reason, 'refused');
    assert.match(error?.message ?? '', /changed since the run was planned/);
  });

  it('refuses a module or an external file that this process cannot locate by its hash, naming it', async () => {
    const sha256 = 'c'.repeat(64);
    const module = await refusal({ ...base, compute: null, source: { kind: 'module', name: 'stage.mjs', sha256 } }, {}, here('cpu'));
    assert.match(module?.message ?? '', /stage module stage\.mjs \(SHA-256 cccccccccccc\) is not available here/);
    const file = await refusal({ ...base, compute: null, files: [{ name: 'train.csv', sha256 }] }, { toString: '/etc/passwd' }, here('cpu'));
    assert.match(file?.message ?? '', /file train\.csv .* is not available here/);
  });
});

describe('the tasks of a plan', () => {
  it('name no absolute path of the planning machine: modules and external files go by hash', async () => {
    const dir = await tempDir();
    await writeTinyIdx(join(dir, 'data'));
    await mkdir(join(dir, 'stages'));
    await copyFile(join(STAGES, 'count.mjs'), join(dir, 'stages', 'count.mjs'));
    const file = join(dir, 'exp.yaml');
    await writeFile(file, [
      'name: exp', 'matrix: { k: [1, 2] }', 'stages:',
      '  data: { uses: dataset, with: { name: fashion-mnist, path: data } }',
      '  split: { uses: split, needs: [data], with: { validation: 20 } }',
      '  count: { uses: ./stages/count.mjs, needs: [split], with: { log: out.log, value: "${{ matrix.k }}" } }',
      '',
    ].join('\n'));
    const { plan } = await preparePlan({ file, sets: [], store: new Store(join(dir, 'artifacts')), allowDownload: false, log: () => {} });
    const graph = new InstanceGraph(plan.instances);
    const tasks = plan.instances.map((instance) => taskOf(instance, graph, plan.backend));
    const text = JSON.stringify(tasks);
    const absolute: string[] = [];
    const walk = (value: unknown): void => {
      if (typeof value === 'string' && (isAbsolute(value) || value.includes(dir))) absolute.push(value);
      else if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
    };
    walk(JSON.parse(text));
    assert.deepEqual(absolute, []);
    assert.ok(!text.includes(dir), 'a task names the planning folder');
    // The files and the module are still there, by hash, and the planning machine locates them.
    const data = plan.instances.find((i) => i.stage === 'data');
    const count = plan.instances.find((i) => i.stage === 'count');
    assert.ok(data !== undefined && count !== undefined);
    const dataTask = taskOf(data, graph, plan.backend);
    assert.equal(dataTask.files.length, 4);
    for (const f of dataTask.files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.values(locatedOf(data)).map((p) => basename(p)).sort(), dataTask.files.map((f) => f.name).sort());
    const countTask = taskOf(count, graph, plan.backend);
    assert.equal(countTask.source.kind, 'module');
    assert.equal(Object.values(locatedOf(count))[0], join(dir, 'stages', 'count.mjs'));
  });
});
