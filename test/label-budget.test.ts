import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Rig } from './support/rig.js';
import { writeTinyIdx } from './support/tiny-data.js';

/**
 * The label-budget experiment's shape on tiny data: representatives at K in
 * [2, 4, 6], and active learning in rounds from 2 representatives, 2 labels
 * a round, so its rounds land on the same budgets, querying by margin and by
 * least confidence (whose first rounds, querying nothing, are one artifact);
 * 2 replicates.
 */
function pipeline(dataDir: string): string {
  const training = `model: { input_shape: [28, 28], layers: [{ type: flatten }, { type: dense, units: 16, activation: relu }, { type: dense, units: 10, activation: softmax }] }
      optimizer: { name: adam, learning_rate: 0.01 }
      epochs: 2
      batch_size: 32
      min_steps: 20
      seed: "\${{ replicate.seed }}"`;
  return `name: budget
replicates: 2
matrix:
  k: [2, 4, 6]
  query: [margin, least-confidence]
stages:
  data: { uses: dataset, with: { name: fashion-mnist, path: ${JSON.stringify(dataDir)} } }
  split: { uses: split, needs: [data], with: { validation: 20 } }
  cluster:
    uses: kmeans
    needs: [split]
    with: { k: "\${{ matrix.k }}", max_iter: 20, seed: "\${{ replicate.seed }}" }
  seed: { uses: seed-labels, needs: [split, cluster], with: { strategy: representatives } }
  train:
    uses: train
    needs: [split, seed]
    with:
      ${training}
  evaluate: { uses: evaluate, needs: [train, split] }
  start-clusters:
    uses: kmeans
    needs: [split]
    with: { k: 2, max_iter: 20, seed: "\${{ replicate.seed }}" }
  start: { uses: seed-labels, needs: [split, start-clusters], with: { strategy: representatives } }
  active:
    uses: active-learning
    needs: [split, start]
    rounds: 3
    with:
      strategy: "\${{ matrix.query }}"
      batch: [2]
      ${training}
  results: { uses: aggregate, needs: [active], publish: results }
`;
}

describe('label budget', () => {
  let rig: Rig;

  before(async () => {
    rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    await rig.write('p.yaml', pipeline(join(rig.dir, 'data')));
    const run = await rig.run(['run', 'p.yaml', '--jobs', '2']);
    assert.equal(run.code, 0, run.stderr);
  });

  it('results read each round\'s labels consumed and test accuracy as a cell\'s, grouped over replicates by round', async () => {
    const result = await rig.run(['results', 'p.yaml', '--per-replicate', '--format', 'json']);
    assert.equal(result.code, 0, result.stderr);
    const rows = (JSON.parse(result.stdout) as { rows: Record<string, unknown>[] }).rows.filter((r) => r['stage'] === 'active');
    assert.equal(rows.length, 12);
    for (const row of rows) {
      assert.equal(row['labels.trueLabelsUsed'], 2 * Number(row['round']), String(row['id']));
      assert.equal(row['evaluate.accuracy'], row['active-learning.accuracy']);
      assert.ok(typeof row['labels.classes'] === 'number' && row['labels.classes'] <= 2 * Number(row['round']));
      // The first round of both queries is one artifact; each row still names its own cell.
      assert.equal(row['query'], /query=(\S+)/.exec(String(row['id']))?.[1]);
    }
    const table = await rig.run(['results', 'p.yaml']);
    assert.match(table.stdout, /active margin, 4 labels\s+2\s/);
    assert.match(table.stdout, /active least-confidence, 4 labels\s+2\s/);
  });

  it('the first round, which queries nothing, is keyed without the query and shared; later rounds key on their own batch, so extending the list reruns only the rounds it changes', async () => {
    const keysOf = async (file: string): Promise<Map<string, { key: string; status: string }>> => {
      const plan = await rig.run(['plan', file, '--json']);
      assert.equal(plan.code, 0, plan.stderr);
      const events = plan.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; id: string; stage: string; key: string; status: string });
      return new Map(events.filter((e) => e.event === 'instance' && e.stage === 'active').map((e) => [e.id, { key: e.key, status: e.status }]));
    };
    const before = await keysOf('p.yaml');
    const key = (id: string): string => before.get(id)?.key ?? '';
    assert.equal(key('active[query=margin replicate=1 round=1]'), key('active[query=least-confidence replicate=1 round=1]'));
    assert.notEqual(key('active[query=margin replicate=1 round=2]'), key('active[query=least-confidence replicate=1 round=2]'));
    // The aggregate's rows name each cell too, the twins included.
    const csv = (await readFile(join(rig.dir, 'results', 'results.csv'), 'utf8')).trim().split('\n');
    const head = csv[0]?.split(',') ?? [];
    const cells = csv.slice(1).map((line) => line.split(',')).map((v) => `${v[head.indexOf('query')] ?? ''} ${v[head.indexOf('round')] ?? ''} ${v[head.indexOf('replicate')] ?? ''}`).sort();
    assert.deepEqual(cells, ['least-confidence', 'margin'].flatMap((q) => [1, 2, 3].flatMap((r) => [1, 2].map((rep) => `${q} ${r} ${rep}`))).sort());

    await rig.write('longer.yaml', (await readFile(join(rig.dir, 'p.yaml'), 'utf8')).replace('batch: [2]', 'batch: [2, 3]'));
    const after = await keysOf('longer.yaml');
    for (const [id, { key: k, status }] of after) {
      const round = Number(/round=(\d+)/.exec(id)?.[1]);
      assert.equal(status, round <= 2 ? 'cached' : 'run', id);
      assert.equal(k === key(id), round <= 2, id);
    }
  });

  it('results --compare pairs each round with the cells of the K grid and the other query\'s round at as many labels', async () => {
    const result = await rig.run(['results', 'p.yaml', '--compare', '--format', 'json']);
    assert.equal(result.code, 0, result.stderr);
    const rows = (JSON.parse(result.stdout) as { rows: Record<string, unknown>[] }).rows;
    const budget = rows.filter((r) => r['kind'] === 'budget').map((r) => `${String(r['a'])} | ${String(r['b'])} | ${String(r['k'])} | ${String(r['n'])}`).sort();
    // Round 1 of both queries is one artifact: not compared with itself.
    assert.deepEqual(budget, [2, 4, 6].flatMap((k) => [
      ...(k === 2 ? [] : [`active margin, ${k} labels | active least-confidence, ${k} labels | ${k} | 2`]),
      `evaluate, K=${k} | active least-confidence, ${k} labels | ${k} | 2`,
      `evaluate, K=${k} | active margin, ${k} labels | ${k} | 2`,
    ]).sort());
    // Rounds of one series are not paired with each other, nor K cells of one strategy.
    assert.equal(rows.length, budget.length, JSON.stringify(rows.map((r) => [r['a'], r['b']])));
  });

  it('results --compare --against SERIES keeps the pairs with that series, as other − SERIES, Holm-adjusted over those alone', async () => {
    const all = await rig.run(['results', 'p.yaml', '--compare', '--format', 'json']);
    const against = await rig.run(['results', 'p.yaml', '--compare', '--against', 'evaluate', '--format', 'json']);
    assert.equal(against.code, 0, against.stderr);
    const rows = (JSON.parse(against.stdout) as { rows: Record<string, unknown>[] }).rows;
    const before = (JSON.parse(all.stdout) as { rows: Record<string, unknown>[] }).rows;
    assert.deepEqual(rows.map((r) => `${String(r['a'])} | ${String(r['b'])}`).sort(), [2, 4, 6].flatMap((k) => [`active least-confidence, ${k} labels | evaluate, K=${k}`, `active margin, ${k} labels | evaluate, K=${k}`]).sort());
    assert.ok(rows.some((r) => r['diff'] !== 0), 'some difference to turn around');
    for (const row of rows) {
      const same = before.find((r) => r['a'] === row['b'] && r['b'] === row['a']);
      assert.ok(same !== undefined);
      // Turned around: the difference changes sign, the p-values do not.
      assert.ok(row['diff'] === -(same['diff'] as number) && row['ciLow'] === -(same['ciHigh'] as number), JSON.stringify([row, same]));
      assert.equal(row['tP'], same['tP']);
      assert.equal(row['k'], same['k']);
    }
    const unknown = await rig.run(['results', 'p.yaml', '--compare', '--against', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--against: no series is named "nope"; the series are "evaluate", "active margin", "active least-confidence"/);
    const alone = await rig.run(['results', 'p.yaml', '--against', 'evaluate']);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /add --compare/);
  });

  it('the report draws test accuracy against labels consumed, one line per method', async () => {
    const result = await rig.run(['report', 'p.yaml', '-o', 'report.html']);
    assert.equal(result.code, 0, result.stderr);
    const html = await readFile(join(rig.dir, 'report.html'), 'utf8');
    assert.match(html, /Test accuracy against labels consumed/);
    const specs = /<script type="application\/json" id="seedflow-specs">([\s\S]*?)<\/script>/.exec(html)?.[1];
    assert.ok(specs !== undefined, 'the page holds its chart specs');
    const spec = (JSON.parse(specs) as Record<string, { layer: { data: { values: { series: string; labels: number; value: number }[] } }[] }>)['chart-budget'];
    assert.ok(spec !== undefined, 'a label-budget chart');
    const points = spec.layer.at(-1)?.data.values ?? [];
    assert.deepEqual([...new Set(points.map((p) => p.series))].sort(), ['active least-confidence', 'active margin', 'evaluate']);
    assert.deepEqual(points.filter((p) => p.series === 'active margin').map((p) => p.labels), [2, 4, 6]);
    // Two replicates give each point a 95% band.
    assert.ok(spec.layer.some((l) => (l as { name?: string }).name === 'error-bands'));
  });
});
