import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { checkPipeline } from '../src/executor/prepare.js';
import { DiagnosticError } from '../src/errors/diagnostic.js';
import { Random } from '../src/util/random.js';
import { tempDir } from './support/stage-harness.js';
import { collect, Rig, STAGES } from './support/rig.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** One random edit of the kind people make: a deleted, doubled or swapped piece of text. */
function mutate(text: string, random: Random): string {
  const lines = text.split('\n');
  const i = random.int(lines.length);
  const line = lines[i] ?? '';
  switch (random.int(7)) {
    case 0: lines.splice(i, 1); break;
    case 1: lines.splice(i, 0, line); break;
    case 2: lines[i] = line.slice(0, random.int(line.length + 1)); break;
    case 3: lines[i] = `  ${line}`; break;
    case 4: lines[i] = line.replace(/[a-z]/, (c) => String.fromCharCode(((c.charCodeAt(0) - 97 + 1) % 26) + 97)); break;
    case 5: lines[i] = line.replace(/\d+/, 'x'); break;
    default: {
      const j = random.int(lines.length);
      lines[i] = lines[j] ?? '';
      lines[j] = line;
    }
  }
  return lines.join('\n');
}

describe('robustness', () => {
  it('randomly damaged pipelines are either valid or get located diagnostics, never a crash', async () => {
    const dir = await tempDir();
    const original = await readFile(join(ROOT, 'pipelines', 'quick.yaml'), 'utf8');
    const random = new Random(7);
    let invalid = 0;
    for (let n = 0; n < 300; n++) {
      let text = original;
      for (let edits = 1 + random.int(3); edits > 0; edits--) text = mutate(text, random);
      const file = join(dir, `p${n}.yaml`);
      await writeFile(file, text);
      try {
        await checkPipeline(file, []);
      } catch (error) {
        assert.ok(error instanceof DiagnosticError, `mutation ${n} crashed: ${String(error)}\n${text}`);
        invalid++;
        const lines = text.split('\n').length;
        for (const d of error.diagnostics) {
          assert.ok(d.line >= 1 && d.line <= lines + 1 && d.column >= 1, `mutation ${n}: bad position ${d.line}:${d.column}`);
          assert.ok(d.message.length > 0);
        }
      }
    }
    assert.ok(invalid > 100, `only ${invalid} of 300 mutations were invalid: the mutations are too gentle to test anything`);
  });

  it('Ctrl-C stops a run cleanly: exit code 130, the lock released, no partial artifact', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: slow
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: 1 } }
  b: { uses: ${STAGES}/count-heavy.mjs, needs: [a], with: { log: ${rig.log}, sleep_ms: 20000 } }
`);
    const child = rig.spawn(['run', 'p.yaml', '--json']);
    let seen = '';
    await new Promise<void>((done) => child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (/"event":"stage-start","time":\d+,"id":"b"/.test(seen)) done();
    }));
    child.kill('SIGINT');
    const result = await collect(child);
    assert.equal(result.code, 130, result.stderr);
    const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'b');
    assert.ok(end && end.event === 'stage-end' && end.status === 'interrupted');
    const again = await rig.run(['plan', 'p.yaml', '--json']);
    const states = Object.fromEntries(again.events.flatMap((e) => (e.event === 'instance' ? [[e.id, e.status]] : [])));
    assert.deepEqual(states, { a: 'cached', b: 'run' });
    const { existsSync } = await import('node:fs');
    assert.ok(!existsSync(join(rig.dir, 'artifacts', 'lock')), 'the lock was left behind');
  });
});
