import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, LiveProgress, ProgressModel, renderProgress } from '../src/cli/progress.js';
import type { RunEvent } from '../src/executor/events.js';

const T0 = 1_000_000;

/** A run of four instances: prep cached, cluster and two trains to run on two jobs. */
function events(): RunEvent[] {
  const instance = (id: string, stage: string, status: 'cached' | 'run'): RunEvent => ({ event: 'instance', time: T0, id, stage, matrix: {}, key: id, status, reasons: [] });
  return [
    instance('prep', 'prep', 'cached'),
    instance('cluster[k=10]', 'cluster', 'run'),
    instance('train[k=10 s=a]', 'train', 'run'),
    instance('train[k=10 s=b]', 'train', 'run'),
    { event: 'run-start', time: T0, run: 'r1', pipeline: 'grid', jobs: 2, backend: 'cpu', store: '/s', instances: 4, selected: 4, toRun: 3 },
    { event: 'stage-start', time: T0, id: 'cluster[k=10]', stage: 'cluster', key: 'c', where: 'worker' },
    { event: 'progress', time: T0 + 500, id: 'cluster[k=10]', progress: { unit: 'iteration', step: 12, total: 100, metrics: { inertia: 1234567.8 } } },
    { event: 'stage-end', time: T0 + 2000, id: 'cluster[k=10]', stage: 'cluster', key: 'c', status: 'done', durationMs: 2000 },
    { event: 'stage-start', time: T0 + 2000, id: 'train[k=10 s=a]', stage: 'train', key: 'a', where: 'worker' },
    { event: 'stage-start', time: T0 + 2000, id: 'train[k=10 s=b]', stage: 'train', key: 'b', where: 'worker' },
    { event: 'progress', time: T0 + 4000, id: 'train[k=10 s=a]', progress: { unit: 'epoch', step: 5, total: 20, metrics: { loss: 0.41234, val_accuracy: 0.8 } } },
  ];
}

describe('live progress', () => {
  it('the grid line counts done, running, cached, failed and waiting instances, with an ETA from the epochs left', () => {
    const model = new ProgressModel();
    for (const e of events()) model.apply(e);
    const lines = renderProgress(model, { now: T0 + 4000, width: 200 });
    assert.match(lines[0] ?? '', /^grid: 2\/4 · 1 done · 2 running · 1 cached · 0 failed · 0 waiting · 4\.0 s · ETA 6\.0 s$/);
    assert.match(lines[1] ?? '', /^█+░+ 50%$/);
    // 5 of 20 epochs in 2 s: 6 s left for train a, and train b is projected like it.
    assert.match(lines[2] ?? '', /▶ train\[k=10 s=a\]  epoch 5\/20  loss 0\.4123 val_accuracy 0\.8  ███░░░░░░░  2\.0 s/);
    assert.match(lines[3] ?? '', /▶ train\[k=10 s=b\]  2\.0 s$/);
    assert.equal(lines.length, 4);
  });

  it('a running k-means shows its iteration and inertia, and the ETA is unknown while nothing has finished', () => {
    const model = new ProgressModel();
    for (const e of events().slice(0, 6)) model.apply(e);
    assert.match(renderProgress(model, { now: T0 + 100, width: 200 })[0] ?? '', /ETA …$/);
    const progress = events()[6];
    assert.ok(progress !== undefined);
    model.apply(progress);
    const lines = renderProgress(model, { now: T0 + 500, width: 200 });
    assert.match(lines[2] ?? '', /▶ cluster\[k=10\]  iteration 12\/100  inertia 1\.23e\+6/);
  });

  it('failed and skipped instances are counted, and lines never exceed the terminal width', () => {
    const model = new ProgressModel();
    for (const e of events().slice(0, 9)) model.apply(e);
    model.apply({ event: 'stage-end', time: T0 + 3000, id: 'train[k=10 s=a]', stage: 'train', key: 'a', status: 'failed', durationMs: 1000, failure: { reason: 'stage-threw', message: 'boom' } });
    model.apply({ event: 'stage-end', time: T0 + 3000, id: 'train[k=10 s=b]', stage: 'train', key: 'b', status: 'skipped', durationMs: 0, failure: { reason: 'dependency-failed', dependency: 'cluster[k=10]' } });
    const lines = renderProgress(model, { now: T0 + 3000, width: 40 });
    assert.ok(lines.every((l) => [...l].length < 40), lines.join('\n'));
    const wide = renderProgress(model, { now: T0 + 3000, width: 200 });
    assert.match(wide[0] ?? '', /4\/4 · 1 done · 0 running · 1 cached · 1 failed · 1 skipped · 0 waiting .* ETA 0 s/);
  });

  it('the terminal view redraws in place and prints log lines above itself', async () => {
    let written = '';
    const view = new LiveProgress({ write: (t) => ((written += t), true), columns: 120 }, { intervalMs: 1 });
    const [first, ...rest] = events();
    assert.ok(first !== undefined);
    view.event(first, null);
    for (const e of rest) view.event(e, e.event === 'stage-end' ? { level: 'info', text: '  ✓ cluster[k=10] (2.0 s)' } : null);
    await new Promise((r) => setTimeout(r, 20));
    view.close();
    assert.match(written, / {2}✓ cluster\[k=10\] \(2\.0 s\)\n/);
    // Redraws go back up over the previous view (cursor to a previous line) and clear below.
    assert.match(written, /\x1b\[\d+F\x1b\[J/);
    assert.match(written, /grid: \d\/4 · /);
    assert.ok(written.endsWith('\x1b[J'), 'closing clears the view');
  });

  it('at 80 columns the ETA stays and the least useful counts give way', () => {
    const model = new ProgressModel();
    for (const e of events()) model.apply(e);
    model.apply({ event: 'run-start', time: T0, run: 'r1', pipeline: 'fashion-mnist-replicated', jobs: 2, backend: 'cpu', store: '/s', instances: 1004, selected: 1004, toRun: 377 });
    const [head] = renderProgress(model, { now: T0 + 4000, width: 80 });
    assert.ok(head !== undefined && [...head].length < 80, head);
    assert.match(head, /^fashion-mnist-replicated: 2\/4 · .*ETA 6\.0 s$/);
    assert.doesNotMatch(head, /…/);
  });

  it('with durations from earlier runs, the ETA does not swing with the first instances to finish', () => {
    // Four trains of about 10 s each were typical before; the first one of this run happens to take 1 s.
    const run = (model: ProgressModel): void => {
      for (const e of events().slice(0, 5)) model.apply(e);
      for (const id of ['train[k=20 s=a]', 'train[k=20 s=b]']) model.apply({ event: 'instance', time: T0, id, stage: 'train', matrix: {}, key: id, status: 'run', reasons: [] });
      model.apply({ event: 'stage-start', time: T0, id: 'train[k=10 s=a]', stage: 'train', key: 'a', where: 'process' });
      model.apply({ event: 'stage-end', time: T0 + 1000, id: 'train[k=10 s=a]', stage: 'train', key: 'a', status: 'done', durationMs: 1000 });
    };
    const naive = new ProgressModel();
    run(naive);
    const informed = new ProgressModel(new Map([['train', 10_000], ['cluster', 2000]]));
    run(informed);
    // Waiting: cluster (2 s), 3 trains; 2 jobs. Without a prior a train is taken as 1 s; with it, (1 + 3 * 10) / 4 s.
    assert.equal(naive.eta(T0 + 1000), (1000 + 3 * 1000) / 2);
    assert.equal(informed.eta(T0 + 1000), (2000 + 3 * ((1000 + 30_000) / 4)) / 2);
  });

  it('instances left out by --only are not part of the view\'s total', () => {
    const model = new ProgressModel();
    model.apply({ event: 'instance', time: T0, id: 'a', stage: 'a', matrix: {}, key: 'a', status: 'not-selected', reasons: ['not selected by --only'] });
    model.apply({ event: 'instance', time: T0, id: 'b', stage: 'b', matrix: {}, key: 'b', status: 'cached', reasons: [] });
    assert.equal(model.total, 1);
    assert.match(renderProgress(model, { now: T0, width: 200 })[0] ?? '', /: 1\/1 /);
  });

  it('durations read naturally', () => {
    assert.equal(formatDuration(850), '850 ms');
    assert.equal(formatDuration(12_340), '12.3 s');
    assert.equal(formatDuration(245_000), '4 min 05 s');
    assert.equal(formatDuration(3_720_000), '1 h 02 min');
  });
});
