import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rig, STAGES } from './support/rig.js';

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly args?: readonly string[];
  /** `file:line:column error: message` as a regular expression over the first diagnostic line. */
  readonly expect: RegExp;
  readonly hint?: RegExp;
}

const ok = `name: ok
params: { epochs: 3 }
matrix: { k: [1, 2] }
stages:
  a: { uses: aggregate }
`;

const CASES: readonly Case[] = [
  { name: 'YAML syntax error', yaml: 'name: x\nstages:\n  a: {uses: aggregate\n  b: 1\n', expect: /p\.yaml:\d+:\d+ error: YAML syntax error: / },
  { name: 'wrong type', yaml: 'name: x\nstages:\n  a:\n    uses: aggregate\n    needs: b\n', expect: /p\.yaml:5:12 error: "stages\.a\.needs" must be array, got string "b"/ },
  { name: 'unknown key at the top', yaml: 'name: x\nstags: {}\nstages:\n  a: { uses: aggregate }\n', expect: /p\.yaml:2:1 error: unknown key "stags"/, hint: /did you mean "stages"\?/ },
  { name: 'unknown key in a stage', yaml: 'name: x\nstages:\n  a:\n    uses: aggregate\n    need: []\n', expect: /p\.yaml:5:5 error: unknown key "need" in "stages\.a"/, hint: /did you mean "needs"\?/ },
  { name: 'unknown key in with', yaml: 'name: x\nstages:\n  a:\n    uses: aggregate\n    with: { colums: [] }\n', expect: /p\.yaml:5:13 error: stage "a": unknown key "colums"/, hint: /did you mean "columns"\?/ },
  { name: 'missing required field', yaml: 'name: x\nstages:\n  a:\n    needs: []\n', expect: /p\.yaml:3:3 error: missing required field "uses" in "stages\.a"/ },
  { name: 'missing name', yaml: 'stages:\n  a: { uses: aggregate }\n', expect: /p\.yaml:1:1 error: missing required field "name"/ },
  { name: 'unknown stage type', yaml: 'name: x\nstages:\n  a: { uses: agregate }\n', expect: /p\.yaml:3:14 error: stage "a": unknown stage type "agregate"/, hint: /did you mean "aggregate"\?/ },
  { name: 'needs naming an unknown stage', yaml: 'name: x\nstages:\n  prep: { uses: aggregate }\n  b: { uses: aggregate, needs: [prepp] }\n', expect: /p\.yaml:4:33 error: stage "b" needs unknown stage "prepp"/, hint: /did you mean "prep"\?/ },
  { name: 'a cycle names every stage in it', yaml: 'name: x\nstages:\n  a: { uses: aggregate, needs: [c] }\n  b: { uses: aggregate, needs: [a] }\n  c: { uses: aggregate, needs: [b] }\n', expect: /error: dependency cycle: "a" → "c" → "b" → "a"/ },
  { name: 'undefined matrix axis in an expression', yaml: 'name: x\nmatrix: { k: [1] }\nstages:\n  a: { uses: aggregate, with: { columns: ["${{ matrix.kk }}"] } }\n', expect: /p\.yaml:4:44 error: \$\{\{ matrix\.kk \}\} refers to undefined matrix axis "kk"/, hint: /did you mean "k"\?/ },
  { name: 'undefined param in an expression', yaml: 'name: x\nparams: { epochs: 1 }\nstages:\n  a: { uses: aggregate, with: { columns: ["${{ params.epoch }}"] } }\n', expect: /p\.yaml:4:44 error: \$\{\{ params\.epoch \}\} refers to undefined param "epoch"/, hint: /did you mean "epochs"\?/ },
  { name: 'malformed expression', yaml: 'name: x\nstages:\n  a: { uses: aggregate, with: { columns: ["${{ matrix k }}"] } }\n', expect: /p\.yaml:3:44 error: malformed expression \$\{\{ matrix k \}\}/ },
  { name: 'unterminated expression', yaml: 'name: x\nstages:\n  a: { uses: aggregate, with: { columns: ["${{ matrix.k"] } }\n', expect: /p\.yaml:3:44 error: unterminated expression/ },
  { name: 'a matrix left empty by exclude', yaml: 'name: x\nmatrix:\n  k: [1]\n  exclude:\n    - { k: 1 }\nstages:\n  a: { uses: aggregate }\n', expect: /p\.yaml:4:3 error: the matrix is empty: "exclude" removes every combination/ },
  { name: 'a duplicate key', yaml: 'name: x\nstages:\n  a: { uses: aggregate }\n  a: { uses: aggregate }\n', expect: /p\.yaml:4:3 error: duplicate key "a"/ },
  { name: 'a bad --set: unknown param', yaml: ok, args: ['--set', 'epoch=4'], expect: /<command line>:1:1 error: --set epoch=4: unknown param or matrix axis "epoch"/, hint: /did you mean "epochs"\?/ },
  { name: 'a bad --set: wrong type', yaml: ok, args: ['--set', 'epochs=many'], expect: /<command line>:1:8 error: --set epochs=many: param "epochs" is a number/ },
  { name: 'a bad --set: no value', yaml: ok, args: ['--set', 'epochs'], expect: /<command line>:1:1 error: --set epochs: expected NAME=VALUE/ },
  { name: 'a local stage module that is missing', yaml: 'name: x\nstages:\n  a: { uses: ./stages/nope.js }\n', expect: /p\.yaml:3:14 error: stage "a": local stage module "\.\/stages\/nope\.js" not found/ },
  { name: 'a local module that does not export a stage', yaml: `name: x\nstages:\n  a: { uses: ${STAGES}/not-a-stage.mjs }\n`, expect: /p\.yaml:3:14 error: stage "a": module ".*not-a-stage\.mjs" does not export a stage: its stage has no "run" function/ },
  { name: 'a local module whose roundParams is malformed', yaml: `name: x\nstages:\n  a: { uses: ${STAGES}/bad-round-params.mjs }\n`, expect: /p\.yaml:3:14 error: stage "a": module ".*bad-round-params\.mjs" does not export a stage: its stage's "roundParams" must be \{ firstIgnores\?: \[parameter names\], perRound\?: \[parameter names\] \}/ },
  { name: 'a value of the wrong type for a stage parameter, through an expression', yaml: `name: x\nmatrix: { ms: [fast] }\nstages:\n  a: { uses: ${STAGES}/count.mjs, with: { log: l, sleep_ms: "\${{ matrix.ms }}" } }\n`, expect: /p\.yaml:4:\d+ error: stage "a": "sleep_ms" must be integer, got string "fast" \(in ms=fast\)/ },
  { name: 'a pipeline that is not a mapping', yaml: '- a\n- b\n', expect: /p\.yaml:1:1 error: a pipeline file must be a mapping/ },
];

describe('diagnostics', () => {
  for (const c of CASES) {
    it(`${c.name} gets a located message and exit code 2`, async () => {
      const rig = await Rig.create();
      await rig.write('p.yaml', c.yaml);
      const result = await rig.run(['validate', 'p.yaml', ...(c.args ?? [])]);
      assert.equal(result.code, 2, `exit code ${result.code}\n${result.stderr}${result.stdout}`);
      assert.match(result.stderr.split('\n')[0] ?? '', c.expect, result.stderr);
      if (c.hint) assert.match(result.stderr, c.hint);
      assert.match(result.stderr, /\n\s*\| *\^+/, 'no caret under the source line');
      assert.doesNotMatch(result.stderr, /\n\s+at .*:\d+:\d+\)?\n/, 'a stack trace was printed');
    });
  }

  it('every problem in a file is reported at once', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', 'name: x\nstages:\n  a: { uses: agregate }\n  b: { uses: aggregate, needs: [z] }\n  c: { uses: aggregate, with: { colums: [] } }\n');
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /3 errors found/);
  });

  it('a missing pipeline file is a located error, not a crash', async () => {
    const rig = await Rig.create();
    const result = await rig.run(['plan', 'nope.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /nope\.yaml:1:1 error: pipeline file not found/);
  });

  it('an unknown command or option gets usage help and exit code 2', async () => {
    const rig = await Rig.create();
    const command = await rig.run(['frobnicate']);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /unknown command "frobnicate"/);
    const option = await rig.run(['run', 'p.yaml', '--jbos', '2']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /Unknown option '--jbos'/);
  });

  it('--help lists the commands', async () => {
    const rig = await Rig.create();
    const result = await rig.run(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['validate', 'plan', 'run', 'dag', 'schema', 'gc', 'doctor']) assert.match(result.stdout, new RegExp(`\\n  ${command} `));
  });
});
