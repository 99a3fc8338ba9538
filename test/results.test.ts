import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Browser } from 'playwright-core';
import { browserMissing, launchBrowser } from './support/browser.js';
import { executed, Rig, type CliResult } from './support/rig.js';
import { tinyPipeline, writeTinyIdx } from './support/tiny-data.js';

interface JsonResults {
  readonly columns: string[];
  readonly rows: Record<string, string | number | boolean | null>[];
}

/** The little of the DOM the page checks use (the tests compile without the DOM library). */
interface PageDocument {
  querySelectorAll(selector: string): Iterable<{ readonly id: string; getAttribute(name: string): string | null; querySelectorAll(selector: string): { readonly length: number } }>;
  readonly body: { readonly innerText: string };
}

interface ChartCheck {
  readonly id: string;
  readonly drawn: string | null;
  readonly marks: number;
}

/** Opens a report offline and returns its charts' drawn marks, console errors and any request off the file. */
async function openReport(browser: Browser, file: string, screenshot: string): Promise<{ charts: ChartCheck[]; errors: string[]; remote: string[]; text: string }> {
  const context = await browser.newContext({ offline: true, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const remote: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) remote.push(r.url());
  });
  await page.goto(pathToFileURL(file).href);
  await page.evaluate(() => (globalThis as unknown as { seedflowCharts: Promise<unknown> }).seedflowCharts);
  const charts = await page.evaluate(() =>
    [...(globalThis as unknown as { document: PageDocument }).document.querySelectorAll('.chart')].map((c) => ({
      id: c.id,
      drawn: c.getAttribute('data-drawn'),
      // Data marks only: Vega gives axes and legends other roles.
      marks: c.querySelectorAll('g.role-mark > path, g.role-mark > line, g.role-mark > text').length,
    })),
  );
  const text = await page.evaluate(() => (globalThis as unknown as { document: PageDocument }).document.body.innerText);
  await page.screenshot({ path: screenshot, fullPage: true });
  await context.close();
  return { charts, errors, remote, text };
}

describe('results, report and run history of a tiny pipeline', () => {
  let rig: Rig;
  let first: CliResult;

  before(async () => {
    rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    await rig.write('tiny.yaml', tinyPipeline(join(rig.dir, 'data')));
    first = await rig.run(['run', 'tiny.yaml', '--jobs', '2']);
  });

  it('a run whose output is not a terminal prints plain log lines, without escape codes', () => {
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /✓ train\[k=2 seeding\.strategy=full\]/);
    assert.match(first.stderr, /seedflow: success in/);
    assert.doesNotMatch(first.stderr, /\x1b\[/);
  });

  it('results shows every cell as a table and hides the columns equal in every cell', async () => {
    const result = await rig.run(['results', 'tiny.yaml']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'tiny: 8 cells, 8 computed, 0 missing');
    const header = lines[1] ?? '';
    for (const column of ['stage', 'k', 'seeding.strategy', 'trueLabelsUsed', 'labelAccuracy', 'trainSeconds', 'accuracy', 'loss']) {
      assert.match(header, new RegExp(`(^|\\s)${column.replace('.', '\\.')}(\\s|$)`), `column ${column} in ${header}`);
    }
    assert.doesNotMatch(header, /status/);
    assert.equal(lines.filter((l) => /^evaluate/.test(l)).length, 8);
    assert.match(result.stdout, /same in every cell: status=ok/);
  });

  it('results prints csv, json and markdown', async () => {
    const csv = await rig.run(['results', 'tiny.yaml', '--format', 'csv']);
    assert.equal(csv.code, 0, csv.stderr);
    const csvLines = csv.stdout.trimEnd().split('\n');
    assert.equal(csvLines.length, 9);
    assert.ok(csvLines[0]?.startsWith('id,stage,status,k,seeding.strategy'), csvLines[0]);
    assert.ok(csvLines[0]?.includes('evaluate.accuracy') && csvLines[0].includes('kmeans.inertia'));

    const json = await rig.run(['results', 'tiny.yaml', '--format', 'json']);
    const parsed = JSON.parse(json.stdout) as JsonResults;
    assert.equal(parsed.rows.length, 8);
    for (const row of parsed.rows) {
      const accuracy = row['evaluate.accuracy'];
      assert.ok(typeof accuracy === 'number' && accuracy >= 0 && accuracy <= 1, `accuracy ${String(accuracy)}`);
      assert.equal(typeof row['train.trainSeconds'], 'number');
    }
    assert.deepEqual(parsed.rows.filter((r) => r['k'] === undefined).map((r) => r['stage']), ['evaluate-all', 'evaluate-random']);

    const markdown = await rig.run(['results', 'tiny.yaml', '--format', 'markdown']);
    const mdLines = markdown.stdout.split('\n').filter((l) => l.startsWith('|'));
    assert.equal(mdLines.length, 10);
    assert.match(mdLines[1] ?? '', /^\| --- \| (---:? \| )+---: \|$/);
  });

  it('--sort orders the cells by a column, largest first, and names an unknown column', async () => {
    const sorted = await rig.run(['results', 'tiny.yaml', '--format', 'json', '--sort', 'accuracy']);
    const values = (JSON.parse(sorted.stdout) as JsonResults).rows.map((r) => r['evaluate.accuracy'] as number);
    assert.deepEqual(values, [...values].sort((a, b) => b - a));
    const reversed = await rig.run(['results', 'tiny.yaml', '--format', 'json', '--sort=-accuracy']);
    assert.equal(reversed.code, 0, reversed.stderr);
    const ascending = (JSON.parse(reversed.stdout) as JsonResults).rows.map((r) => r['evaluate.accuracy'] as number);
    assert.deepEqual(ascending, [...values].sort((a, b) => a - b));
    assert.notDeepEqual(ascending, values);
    const bad = await rig.run(['results', 'tiny.yaml', '--sort', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--sort: no column "nope"/);
  });

  it('cells not computed yet are listed as missing, with what their computed inputs say', async () => {
    const json = await rig.run(['results', 'tiny.yaml', '--set', 'epochs=1', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const rows = (JSON.parse(json.stdout) as JsonResults).rows;
    assert.equal(rows.length, 8);
    assert.ok(rows.every((r) => r['status'] === 'missing' && r['evaluate.accuracy'] === undefined));
    // Training params changed, the seed labels did not: their accuracy is still known.
    assert.equal(typeof rows.find((r) => r['seeding.strategy'] === 'full')?.['seed-labels.labelAccuracy'], 'number');
    const table = await rig.run(['results', 'tiny.yaml', '--set', 'epochs=1']);
    assert.match(table.stdout, /tiny: 8 cells, 0 computed, 8 missing/);
    assert.match(table.stderr, /8 of 8 cells are not computed yet/);
  });

  describe('report', { skip: browserMissing() ?? false }, () => {
    let browser: Browser;
    before(async () => {
      browser = await launchBrowser();
    });
    after(async () => {
      await browser.close();
    });

    it('report writes one HTML file whose charts all draw offline in Chromium, and the main chart as SVG and PNG', async () => {
      const result = await rig.run(['report', 'tiny.yaml', '-o', 'out/report.html']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /wrote .*report\.html \(5 charts\)/);
      const html = await readFile(join(rig.dir, 'out', 'report.html'), 'utf8');
      assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/);

      const svg = await readFile(join(rig.dir, 'out', 'report-accuracy.svg'), 'utf8');
      assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.match(svg, /Test accuracy against K/);
      const png = await readFile(join(rig.dir, 'out', 'report-accuracy.png'));
      assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      assert.ok(png.readUInt32BE(16) > 400 && png.readUInt32BE(20) > 200, 'PNG width and height');

      const page = await openReport(browser, join(rig.dir, 'out', 'report.html'), join(rig.dir, 'report.png'));
      assert.deepEqual(page.errors, []);
      assert.deepEqual(page.remote, []);
      assert.deepEqual(page.charts.map((c) => c.id), ['chart-accuracy', 'chart-budget', 'chart-label-accuracy', 'chart-training', 'chart-confusion']);
      for (const chart of page.charts) {
        assert.equal(chart.drawn, 'yes', chart.id);
        assert.ok(chart.marks > 0, `${chart.id} has no marks`);
      }
      assert.match(page.text, /Complete: all 29 stage instances/);
      assert.match(page.text, /all labels: \d\.\d{3}/);
      assert.match(page.text, /Confusion matrix: evaluate/);
    });

    it('--cell picks the confusion matrix by matrix values, and an unknown cell is a usage error', async () => {
      const result = await rig.run(['report', 'tiny.yaml', '-o', 'cell.html', '--cell', 'k=3 strategy=centers']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(await readFile(join(rig.dir, 'cell.html'), 'utf8'), /Confusion matrix: evaluate\[k=3 seeding\.strategy=centers\]/);
      const bad = await rig.run(['report', 'tiny.yaml', '-o', 'bad.html', '--cell', 'k=7']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--cell k=7: no cell matches/);
    });

    it('a report of a failed run still opens and says what is missing', async () => {
      await rig.write('broken.yaml', tinyPipeline(join(rig.dir, 'data'), { name: 'tiny-broken', outputUnits: 3 }));
      const run = await rig.run(['run', 'broken.yaml', '--jobs', '2']);
      assert.equal(run.code, 1);
      const result = await rig.run(['report', 'broken.yaml', '-o', 'broken.html']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /the report is incomplete/);
      const page = await openReport(browser, join(rig.dir, 'broken.html'), join(rig.dir, 'broken.png'));
      assert.deepEqual(page.errors, []);
      assert.match(page.text, /Incomplete:/);
      assert.match(page.text, /the last run \(.+\) failed/);
      assert.match(page.text, /train.*failed in the last run: .*3 units/);
      assert.match(page.text, /No grid cell is evaluated yet/);
      for (const chart of page.charts) assert.ok(chart.marks > 0, `${chart.id} has no marks`);
    });
  });

  it('runs lists both runs newest first, and compare shows the changed param and metrics', async () => {
    const second = await rig.run(['run', 'tiny.yaml', '--jobs', '2', '--set', 'epochs=1']);
    assert.equal(second.code, 0, second.stderr);
    const runs = await rig.run(['runs', 'tiny', '--json']);
    assert.equal(runs.code, 0, runs.stderr);
    const list = runs.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string; status: string; sets: string[]; params: Record<string, unknown> });
    assert.equal(list.length, 2);
    const [b, a] = list;
    assert.deepEqual(b?.sets, ['epochs=1']);
    assert.deepEqual(a?.sets, []);
    assert.equal(b?.params['epochs'], 1);
    assert.ok(list.every((r) => r.status === 'success'));

    const table = await rig.run(['runs']);
    assert.match(table.stdout, /^RUN\s+PIPELINE\s+STARTED/);
    assert.ok(table.stdout.indexOf(b?.id ?? '?') < table.stdout.indexOf(a?.id ?? '?'), 'newest first');

    const compared = await rig.run(['compare', a?.id ?? '', b?.id ?? '', '--json']);
    assert.equal(compared.code, 0, compared.stderr);
    const comparison = JSON.parse(compared.stdout) as { params: { name: string; a: unknown; b: unknown }[]; metrics: { id: string; metric: string; a: unknown; b: unknown }[] };
    assert.deepEqual(comparison.params, [{ name: 'epochs', a: 2, b: 1 }]);
    const trainEpochs = comparison.metrics.find((m) => m.id === 'train[k=2 seeding.strategy=full]' && m.metric === 'epochs');
    assert.deepEqual(trainEpochs && [trainEpochs.a, trainEpochs.b], [2, 1]);
    assert.ok(comparison.metrics.some((m) => m.id.startsWith('evaluate[') && m.metric === 'loss' && m.a !== m.b));
    assert.ok(!comparison.metrics.some((m) => /seconds$/i.test(m.metric)), 'timings are left out');
    assert.ok(!comparison.metrics.some((m) => m.id.startsWith('cluster')), 'cached clusters did not change');

    const text = await rig.run(['compare', a?.id ?? '', b?.id ?? '']);
    assert.match(text.stdout, /Parameters that differ:\n\s+PARAM\s+A\s+B\n\s+epochs\s+2\s+1\n/);
    assert.match(text.stdout, /^ {2}evaluate\[k=2 seeding\.strategy=full\] /m);
    assert.match(text.stdout, /^\s+loss\s+[\d.]+\s+[\d.]+\s+[-+][\d.]+$/m);
    const same = await rig.run(['compare', 'latest', b?.id.slice(0, 17) ?? '']);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stdout, /Parameters: the same[\s\S]*Metrics: no difference/);
  });

  it('the history keeps each stage instance with its outcome, duration and metrics, cached ones included', () => {
    const db = new Database(join(rig.dir, 'artifacts', 'history.sqlite'), { readonly: true });
    try {
      const latest = db.prepare("SELECT id FROM runs WHERE pipeline = 'tiny' ORDER BY started DESC LIMIT 1").get() as { id: string };
      const stage = (id: string) => db.prepare('SELECT outcome, duration_ms, summary FROM stages WHERE run_id = ? AND id = ?').get(latest.id, id) as { outcome: string; duration_ms: number | null; summary: string };
      const cluster = stage('cluster[k=3]');
      assert.equal(cluster.outcome, 'cached');
      assert.equal(cluster.duration_ms, null);
      assert.equal((JSON.parse(cluster.summary) as { metrics: { k: number } }).metrics.k, 3);
      const train = stage('train[k=3 seeding.strategy=full]');
      assert.equal(train.outcome, 'executed');
      assert.ok((train.duration_ms ?? 0) > 0);
      assert.equal((JSON.parse(train.summary) as { metrics: { epochs: number } }).metrics.epochs, 1);
    } finally {
      db.close();
    }
  });

  it('compare lists no difference between a run and its forced re-run, whose timings differ', async () => {
    const cached = await rig.run(['run', 'tiny.yaml', '--json']);
    assert.equal(cached.code, 0, cached.stderr);
    const forced = await rig.run(['run', 'tiny.yaml', '--force', 'cluster', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(executed(forced).includes('cluster[k=2]'), 'cluster was not recomputed');
    const compared = await rig.run(['compare', 'latest~1', 'latest', '--json']);
    assert.equal(compared.code, 0, compared.stderr);
    const comparison = JSON.parse(compared.stdout) as { params: unknown[]; metrics: unknown[] };
    assert.deepEqual(comparison.metrics, []);
    const db = new Database(join(rig.dir, 'artifacts', 'history.sqlite'), { readonly: true });
    try {
      const timings = (db.prepare("SELECT summary FROM stages WHERE id = 'cluster[k=2]' AND summary IS NOT NULL").all() as { summary: string }[])
        .map((r) => (JSON.parse(r.summary) as { timings: { total: number } }).timings.total);
      assert.ok(new Set(timings).size > 1, `the cluster's timings ${timings.join(', ')} should differ between executions`);
    } finally {
      db.close();
    }
  });
});
