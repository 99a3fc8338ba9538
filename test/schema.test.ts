import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import AjvModule from 'ajv';
import { parse } from 'yaml';
import { editorSchema } from '../src/cli/schema.js';
import { BUILTIN_NAMES, loadStage } from '../src/stages/registry.js';
import { schemaProblem } from '../src/config/validate-schema.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('schemas', () => {
  it('the committed pipeline schema is what `seedflow schema` prints', async () => {
    const committed = JSON.parse(await readFile(join(ROOT, 'schemas', 'pipeline.schema.json'), 'utf8')) as unknown;
    assert.deepEqual(committed, JSON.parse(JSON.stringify(await editorSchema())), 'schemas/pipeline.schema.json is stale: regenerate it with `seedflow schema > schemas/pipeline.schema.json`');
  });

  it('the shipped pipelines are valid under the committed schema, as an editor checks them', async () => {
    const Ajv = AjvModule.default;
    const validate = new Ajv({ strict: true }).compile(JSON.parse(await readFile(join(ROOT, 'schemas', 'pipeline.schema.json'), 'utf8')) as object);
    for (const name of (await readdir(join(ROOT, 'pipelines'))).filter((f) => f.endsWith('.yaml'))) {
      const data = parse(await readFile(join(ROOT, 'pipelines', name), 'utf8')) as unknown;
      assert.ok(validate(data), `${name}: ${JSON.stringify(validate.errors)}`);
    }
  });

  it('the committed schema flags a mistyped stage type, a mistyped value and a value outside an enum, as an editor would', async () => {
    const Ajv = AjvModule.default;
    const validate = new Ajv({ strict: true, allErrors: true }).compile(JSON.parse(await readFile(join(ROOT, 'schemas', 'pipeline.schema.json'), 'utf8')) as object);
    const check = (yaml: string): string[] => (validate(parse(yaml)) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`));
    const good = 'name: x\nmatrix: { k: [10] }\nstages:\n  data: { uses: dataset, with: { name: fashion-mnist } }\n  cluster: { uses: kmeans, needs: [data], with: { k: "${{ matrix.k }}", max_iter: 10 } }\n  seed: { uses: seed-labels, needs: [cluster], with: { strategy: part, percent: "${{ params.p }}" } }\n  mine: { uses: ./stages/mine.js, with: { anything: 1 } }\n';
    assert.deepEqual(check(good), []);
    const typos: readonly [string, string, RegExp][] = [
      ['uses: dataset', 'uses: datset', /\/stages\/data\/uses must be equal to one of the allowed values/],
      ['max_iter: 10', 'max_iter: ten', /\/stages\/cluster\/with\/max_iter must be integer/],
      ['strategy: part', 'strategy: parts', /\/stages\/seed\/with\/strategy must be equal to one of the allowed values/],
      ['max_iter: 10', 'max_iters: 10', /\/stages\/cluster\/with must NOT have additional properties/],
      ['strategy: part, ', '', /\/stages\/seed\/with must have required property 'strategy'/],
    ];
    for (const [from, to, expected] of typos) {
      const errors = check(good.replace(from, to));
      assert.ok(errors.some((e) => expected.test(e)), `${to}: ${errors.join('; ')}`);
    }
  });

  it('every built-in stage type has a name, a version and a valid parameter schema', async () => {
    for (const name of BUILTIN_NAMES) {
      const stage = await loadStage({ kind: 'builtin', name });
      assert.equal(stage.name, name);
      assert.ok(typeof stage.version === 'number' || typeof stage.version === 'string');
      assert.equal(schemaProblem(stage.schema), null, name);
    }
  });
});
