import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import AjvModule from 'ajv';
import { EVENTS_SCHEMA } from '../src/executor/events-schema.js';
import { Rig, STAGES } from './support/rig.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function validator(): Promise<(line: string) => string | null> {
  const Ajv = AjvModule.default;
  const validate = new Ajv({ strict: true, allErrors: true }).compile(JSON.parse(await readFile(join(ROOT, 'schemas', 'events.schema.json'), 'utf8')) as object);
  return (line) => (validate(JSON.parse(line)) ? null : `${line}\n${JSON.stringify(validate.errors?.slice(0, 3))}`);
}

const PIPELINE = `name: events
matrix: { k: [1, 2] }
stages:
  prep: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: 1 }, publish: out }
  cell: { uses: ${STAGES}/count.mjs, needs: [prep], with: { log: invocations.log, value: "\${{ matrix.k }}" } }
  broken: { uses: ${STAGES}/fail.mjs, needs: [cell] }
  after: { uses: ${STAGES}/count.mjs, needs: [broken], with: { log: invocations.log } }
`;

describe('the NDJSON event stream', () => {
  it('the committed event schema is the one in the code, and passes ajv strict mode', async () => {
    const committed = JSON.parse(await readFile(join(ROOT, 'schemas', 'events.schema.json'), 'utf8')) as unknown;
    assert.deepEqual(committed, JSON.parse(JSON.stringify(EVENTS_SCHEMA)), 'schemas/events.schema.json is stale');
  });

  it('every line of plan and run streams (done, failed, skipped, cached, not selected, published) matches the schema', async () => {
    const check = await validator();
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const lines: string[] = [];
    for (const args of [['plan', 'p.yaml', '--json'], ['run', 'p.yaml', '--json', '--keep-going'], ['run', 'p.yaml', '--json', '--only', 'cell']]) {
      const result = await rig.run(args);
      assert.ok(result.code === 0 || result.code === 1, `${args.join(' ')}: ${result.stderr}`);
      lines.push(...result.stdout.split('\n').filter((l) => l !== ''));
    }
    const problems = lines.map(check).filter((p) => p !== null);
    assert.deepEqual(problems, []);
    const kinds = new Set(lines.map((l) => (JSON.parse(l) as { event: string }).event));
    for (const kind of ['instance', 'run-start', 'stage-start', 'stage-end', 'published', 'run-end']) assert.ok(kinds.has(kind), `no ${kind} event was checked`);
    const statuses = new Set(lines.map((l) => JSON.parse(l) as { status?: string }).map((e) => e.status));
    for (const status of ['done', 'failed', 'skipped', 'cached', 'not-selected']) assert.ok(statuses.has(status), `no ${status} was checked`);
  });

  it('the schema refuses an event with a missing field, an unknown field or an unknown failure reason', async () => {
    const check = await validator();
    const ok = { event: 'stage-end', time: 1, id: 'a', stage: 'a', key: 'a'.repeat(64), status: 'failed', durationMs: 3, failure: { reason: 'worker-lost', detail: 'signal SIGKILL' } };
    assert.equal(check(JSON.stringify(ok)), null);
    const { durationMs: _, ...missing } = ok;
    assert.notEqual(check(JSON.stringify(missing)), null);
    assert.notEqual(check(JSON.stringify({ ...ok, extra: 1 })), null);
    assert.notEqual(check(JSON.stringify({ ...ok, failure: { reason: 'gremlins' } })), null);
  });
});
