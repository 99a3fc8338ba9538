import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { browserMissing, launchBrowser } from './support/browser.js';
import { executed, Rig, type CliResult } from './support/rig.js';
import { tinyPipeline, writeTinyIdx } from './support/tiny-data.js';

interface PlannedInstance {
  readonly event: string;
  readonly id: string;
  readonly stage: string;
  readonly matrix: Record<string, unknown>;
  readonly key: string;
  readonly status: string;
}

function planned(result: CliResult): PlannedInstance[] {
  return result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as PlannedInstance).filter((e) => e.event === 'instance');
}

function ofStage(instances: readonly PlannedInstance[], stage: string): PlannedInstance[] {
  return instances.filter((i) => i.stage === stage);
}

describe('replicates of a pipeline', () => {
  let rig: Rig;

  before(async () => {
    rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    // 3 random labels, as many as the K=3 strategies look up, so those are compared with the random baseline.
    await rig.write('rep.yaml', tinyPipeline(join(rig.dir, 'data'), { name: 'rep', replicates: 2 }).replace('strategy: random, n: 8', 'strategy: random, n: 3'));
  });

  it('share the data and the split, and run one k-means per K and seed and one training per cell and seed', async () => {
    const result = await rig.run(['plan', 'rep.yaml', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const instances = planned(result);
    assert.equal(ofStage(instances, 'data').length, 1);
    assert.equal(ofStage(instances, 'split').length, 1);
    assert.equal(ofStage(instances, 'seed-all').length, 1, 'taking every label depends on no seed');
    const clusters = ofStage(instances, 'cluster');
    assert.deepEqual(clusters.map((c) => c.matrix).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), [
      { k: 2, replicate: 1 }, { k: 2, replicate: 2 }, { k: 3, replicate: 1 }, { k: 3, replicate: 2 },
    ]);
    assert.equal(new Set(clusters.map((c) => c.key)).size, 4);
    assert.equal(ofStage(instances, 'train').length, 2 * 3 * 2);
    assert.equal(ofStage(instances, 'train-random').length, 2);
    assert.equal(ofStage(instances, 'train-all').length, 2);
    assert.equal(ofStage(instances, 'results').length, 1);
    assert.ok(instances.some((i) => i.id === 'evaluate[k=3 replicate=2 seeding.strategy=centers]'), 'the replicate is part of the instance id');
  });

  it('dag names the replicate axis of every stage that repeats', async () => {
    const result = await rig.run(['dag', 'rep.yaml']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /cluster: kmeans × k, replicate \(4\)/);
    assert.match(result.stdout, /split: split"/);
  });

  it('raising the count with --set keeps the earlier replicates\' keys and runs only the new replicates', async () => {
    const first = await rig.run(['run', 'rep.yaml', '--jobs', '2', '--json']);
    assert.equal(first.code, 0, first.stderr);
    const before = new Map(planned(await rig.run(['plan', 'rep.yaml', '--json'])).map((i) => [i.id, i.key]));
    const more = planned(await rig.run(['plan', 'rep.yaml', '--json', '--set', 'replicates=3']));
    for (const instance of more) {
      // The gathering results stage is the one whose inputs change.
      if (before.has(instance.id) && instance.stage !== 'results') assert.equal(instance.key, before.get(instance.id), `${instance.id} keeps its key`);
    }
    const second = await rig.run(['run', 'rep.yaml', '--jobs', '2', '--json', '--set', 'replicates=3']);
    assert.equal(second.code, 0, second.stderr);
    const ran = executed(second);
    // The new replicate's instances, and the gathering results stage, whose inputs grew.
    assert.ok(ran.length > 0);
    for (const id of ran) assert.ok(id === 'results' || /replicate=3/.test(id), `${id} ran again`);
    assert.equal(ran.filter((id) => /replicate=3/.test(id)).length, more.filter((i) => /replicate=3/.test(i.id)).length);
  });

  it('results gives each cell\'s n, mean, standard deviation and Student-t interval over its replicates, as numbers in json', async () => {
    const stats = await rig.run(['results', 'rep.yaml', '--set', 'replicates=3', '--format', 'json']);
    assert.equal(stats.code, 0, stats.stderr);
    const perReplicate = await rig.run(['results', 'rep.yaml', '--set', 'replicates=3', '--format', 'json', '--per-replicate']);
    assert.equal(perReplicate.code, 0, perReplicate.stderr);
    const rows = (JSON.parse(stats.stdout) as { rows: Record<string, unknown>[] }).rows;
    const replicates = (JSON.parse(perReplicate.stdout) as { rows: Record<string, unknown>[] }).rows;
    assert.equal(replicates.length, 3 * (2 * 3 + 2));
    assert.equal(rows.length, 2 * 3 + 2);
    const cell = rows.find((r) => r['id'] === 'evaluate[k=3 seeding.strategy=centers]');
    assert.ok(cell !== undefined);
    const values = replicates.filter((r) => r['k'] === 3 && r['seeding.strategy'] === 'centers').map((r) => r['evaluate.accuracy'] as number);
    assert.equal(values.length, 3);
    assert.equal(cell['n'], 3);
    const mean = values.reduce((a, b) => a + b, 0) / 3;
    const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / 2);
    // t(0.975, 2) = 4.302652729911275 (scipy.stats.t.ppf).
    const half = 4.302652729911275 * sd / Math.sqrt(3);
    for (const [column, expected] of [['mean', mean], ['sd', sd], ['ci95Low', mean - half], ['ci95High', mean + half]] as const) {
      const actual: unknown = cell[`evaluate.accuracy.${column}`];
      assert.equal(typeof actual, 'number', column);
      assert.ok(Math.abs((actual as number) - expected) < 1e-9, `${column}: ${String(actual)} against ${expected}`);
    }
    // The tiny data has 5 classes; a seed set labelled through K clusters holds at most K of them.
    for (const row of replicates) {
      const classes = row['labels.classes'];
      const most = row['seed-labels.strategy'] === 'all' ? 5 : typeof row['k'] === 'number' ? Math.min(5, row['k']) : 3;
      assert.ok(typeof classes === 'number' && classes >= 1 && classes <= most, `class coverage ${String(classes)} of ${String(row['id'])}`);
      if (row['seed-labels.strategy'] === 'all') assert.equal(classes, 5);
    }
    const table = await rig.run(['results', 'rep.yaml', '--set', 'replicates=3']);
    assert.match(table.stdout, /centers, K=3\s+3\s+[0-9.]+ ± [0-9.]+/);
  });

  it('results --compare pairs strategies within a K and against the random baseline with as many labels, Holm-adjusted', async () => {
    const result = await rig.run(['results', 'rep.yaml', '--set', 'replicates=3', '--compare', '--format', 'json']);
    assert.equal(result.code, 0, result.stderr);
    const rows = (JSON.parse(result.stdout) as { rows: Record<string, unknown>[] }).rows;
    // 3 pairs of strategies at each of 2 Ks, and the 3 strategies at K=3 against 3 random labels.
    assert.equal(rows.filter((r) => r['kind'] === 'strategies').length, 6);
    assert.deepEqual(rows.filter((r) => r['kind'] === 'random').map((r) => r['k']), [3, 3, 3]);
    for (const row of rows) {
      assert.equal(row['n'], 3);
      for (const [raw, adjusted] of [['tP', 'tPHolm'], ['wilcoxonP', 'wilcoxonPHolm']] as const) {
        if (row[raw] === null) continue;
        assert.ok((row[adjusted] as number) >= (row[raw] as number) && (row[adjusted] as number) <= 1, `${adjusted} ≥ ${raw}`);
      }
      assert.equal(row['significant'], row['tPHolm'] !== null && (row['tPHolm'] as number) < 0.05);
    }
    const text = await rig.run(['results', 'rep.yaml', '--set', 'replicates=3', '--compare']);
    assert.match(text.stdout, /Holm's adjustment over the 9 comparisons/);
  });

  it('an explicit list of seeds names the replicates by their seeds', async () => {
    const result = await rig.run(['plan', 'rep.yaml', '--json', '--set', 'replicates=[7, 11]']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual([...new Set(ofStage(planned(result), 'train-random').map((i) => i.matrix['replicate']))], [7, 11]);
  });

  it('a bad count on the command line is a usage error naming the flag', async () => {
    for (const value of ['0', 'ten', '[1, 1]', '100000']) {
      const result = await rig.run(['plan', 'rep.yaml', '--set', `replicates=${value}`]);
      assert.equal(result.code, 2, `${value}: ${result.stderr}`);
      assert.match(result.stderr, /--set replicates=.*replicates must be a count/);
      assert.doesNotMatch(result.stderr, /at .*\.js:\d+/);
    }
  });

  it('a replicate seed read without replicates, or a replicate field that does not exist, is located in the file', async () => {
    await rig.write('norep.yaml', tinyPipeline(join(rig.dir, 'data'), { name: 'norep' }).replace('seed: 3\n', 'seed: 3\n').replace('n: 8, seed: "${{ params.seed }}"', 'n: 8, seed: "${{ replicate.seed }}"'));
    const result = await rig.run(['validate', 'norep.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /norep\.yaml:\d+:\d+ error: \$\{\{ replicate\.seed \}\} is used but the pipeline declares no replicates/);
    await rig.write('field.yaml', tinyPipeline(join(rig.dir, 'data'), { name: 'field', replicates: 2 }).replace('n: 8, seed: "${{ replicate.seed }}"', 'n: 8, seed: "${{ replicate.index }}"'));
    const field = await rig.run(['validate', 'field.yaml']);
    assert.equal(field.code, 2);
    assert.match(field.stderr, /field\.yaml:\d+:\d+ error: \$\{\{ replicate\.index \}\}: a replicate has only a seed/);
  });

  it('replicates that are neither a count nor a list of seeds are located in the file', async () => {
    await rig.write('zero.yaml', tinyPipeline(join(rig.dir, 'data'), { name: 'zero', replicates: 2 }).replace('replicates: 2', 'replicates: 0'));
    const result = await rig.run(['validate', 'zero.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /zero\.yaml:\d+:\d+ error: .*replicates/);
  });

  describe('report', { skip: browserMissing() ?? false }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchBrowser();
    });
    after(async () => {
      await browser.close();
    });

    it('the report of replicates opens in Chromium with error bars and bands drawn and the comparisons table', async () => {
      const result = await rig.run(['report', 'rep.yaml', '--set', 'replicates=3', '-o', 'rep/report.html']);
      assert.equal(result.code, 0, result.stderr);
      const context = await browser.newContext({ offline: true, viewport: { width: 1200, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(pathToFileURL(join(rig.dir, 'rep', 'report.html')).href);
      await page.evaluate(() => (globalThis as unknown as { seedflowCharts: Promise<unknown> }).seedflowCharts);
      // Vega names a layer's marks after it: the error layers are `error-bars` and `error-bands`.
      const charts = await page.evaluate(() => {
        interface Node { readonly id: string; getAttribute(name: string): string | null; getBoundingClientRect(): { width: number }; querySelectorAll(selector: string): { readonly length: number } }
        const doc = (globalThis as unknown as { document: { querySelectorAll(selector: string): Iterable<Node> } }).document;
        return [...doc.querySelectorAll('.chart')].map((c) => ({
          id: c.id,
          drawn: c.getAttribute('data-drawn'),
          width: c.getBoundingClientRect().width,
          bars: c.querySelectorAll('g.error_bars_marks > line, g.error_bars_marks > path').length,
          bands: c.querySelectorAll('g.error_bands_marks > path').length,
        }));
      });
      const text = await page.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText);
      const comparisonRows = await page.evaluate(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('#comparisons tbody tr').length);
      await page.screenshot({ path: join(rig.dir, 'rep', 'report.png'), fullPage: true });
      await context.close();
      assert.deepEqual(errors, []);
      const byId = new Map(charts.map((c) => [c.id, c]));
      for (const chart of charts) assert.equal(chart.drawn, 'yes', chart.id);
      // 3 strategies × 2 Ks with an interval each, and the two baselines' bands.
      assert.equal(byId.get('chart-accuracy')?.bars, 6);
      assert.equal(byId.get('chart-accuracy')?.bands, 2);
      assert.ok((byId.get('chart-training')?.bands ?? 0) > 0, 'training curves have bands');
      assert.ok((byId.get('chart-accuracy')?.width ?? 0) > 800, 'the accuracy chart uses the page\'s width');
      assert.equal(comparisonRows, 9);
      assert.match(text, /centers, K=3\s+[0-9.]+ ± [0-9.]+/);
      assert.match(text, /Holm's adjustment over the 9 comparisons/);
      assert.match(text, /replicates\s+3, seeds 1, 2, 3 \(--set\)/);
      // Two runs made the artifacts: the first two replicates, then the third.
      assert.match(text, /The artifacts shown were made by run \S+, success, .*; run \S+, success, /);
    });
  });
});
