import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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
    const validate = new Ajv({ strict: false }).compile(JSON.parse(await readFile(join(ROOT, 'schemas', 'pipeline.schema.json'), 'utf8')) as object);
    for (const name of ['fashion-mnist.yaml', 'quick.yaml']) {
      const data = parse(await readFile(join(ROOT, 'pipelines', name), 'utf8')) as unknown;
      assert.ok(validate(data), `${name}: ${JSON.stringify(validate.errors)}`);
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
