import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, Rig } from './support/rig.js';

const VALID = 'name: h\nparams: { n: 3 }\nstages:\n  d: { uses: dataset }\n  a: { uses: split, needs: [d], with: { validation: "${{ params.n }}" } }\n';

/** One hostile input: the pipeline text (or none), the command line, and what stderr must say. */
interface Row {
  readonly name: string;
  readonly yaml?: string;
  readonly args: readonly string[];
  readonly expect: RegExp;
}

const deep = `name: h\nparams:\n  n: ${'{a: '.repeat(3000)}1${'}'.repeat(3000)}\nstages:\n  a: { uses: split }\n`;
const laughs = `name: h\nx0: &a0 [1,1,1,1,1,1,1,1,1,1]\n${Array.from({ length: 9 }, (_, i) => `x${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(',')}]`).join('\n')}\nstages:\n  a: { uses: split }\n`;
const manyAliases = `name: h\nparams:\n  v: &v 3\nstages:\n  d: { uses: dataset }\n${Array.from({ length: 1500 }, (_, i) => `  s${i}: { uses: split, needs: [d], with: { validation: *v } }`).join('\n')}\n`;
const bigMatrix = `name: h\nmatrix:\n${['a', 'b', 'c', 'd'].map((a) => `  ${a}: [${Array.from({ length: 20 }, (_, i) => i).join(', ')}]`).join('\n')}\nstages:\n  a: { uses: split }\n`;
const manyValues = `name: h\nmatrix:\n  k: [${Array.from({ length: 120_000 }, (_, i) => i).join(',')}]\nstages:\n  a: { uses: split }\n`;
const longValue = `name: h\ndescription: ${'x'.repeat(1_100_000)}\nstages:\n  a: { uses: split }\n`;
const quotedValues = `name: h\nparams:\n${Array.from({ length: 3 }, (_, i) => `  q${i}: "${'x'.repeat(800_000)}"`).join('\n')}\nstages:\n  a: { uses: split }\n`;
const manyInstances = `name: h\nmatrix:\n  k: [${Array.from({ length: 100 }, (_, i) => i + 1).join(',')}]\n  j: [${Array.from({ length: 100 }, (_, i) => i + 1).join(',')}]\nstages:\n  d: { uses: dataset }\n${Array.from({ length: 6 }, (_, i) => `  s${i}: { uses: split, needs: [d], with: { validation: "\${{ matrix.k }}", seed: "\${{ matrix.j }}" } }`).join('\n')}\n`;
const manyErrors = `name: h\nstages:\n${Array.from({ length: 300 }, (_, i) => `  s${i}: { uses: split, with: { nope: 1 } }`).join('\n')}\n`;

const ROWS: readonly Row[] = [
  { name: 'a billion-laughs document', yaml: laughs, args: ['validate', 'p.yaml'], expect: /p\.yaml:\d+:\d+ error: aliases expand to more than 100000 values/ },
  { name: 'an alias inside its own anchor', yaml: 'name: h\nparams: { n: &x [1, *x] }\nstages:\n  a: { uses: dataset }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:2:\d+ error: an alias refers to a value that contains it/ },
  { name: 'an alias before its anchor', yaml: 'name: h\nparams: { n: *x, m: &x 3 }\nstages:\n  a: { uses: split }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:2:14 error: alias "\*x" is used before its anchor/ },
  { name: 'maps nested thousands deep', yaml: deep, args: ['validate', 'p.yaml'], expect: /p\.yaml:3:\d+ error: values are nested more than 64 levels deep/ },
  { name: 'infinite and huge numbers in params and the matrix', yaml: 'name: h\nparams: { n: .inf }\nmatrix: { k: [1e999] }\nstages:\n  a: { uses: split }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:2:14 error: a number here must be finite[\s\S]*p\.yaml:3:15 error: a number here must be finite/ },
  { name: 'a non-finite --set value', yaml: VALID, args: ['validate', 'p.yaml', '--set', 'n=.inf'], expect: /--set n=\.inf: value "\.inf" holds a number that is not finite/ },
  { name: '--set __proto__', yaml: VALID, args: ['validate', 'p.yaml', '--set', '__proto__={polluted: 1}'], expect: /--set __proto__=\{polluted: 1\}: unknown param or matrix axis "__proto__"/ },
  { name: 'needs named like Object\'s properties', yaml: 'name: h\nstages:\n  a: { uses: split, needs: [constructor, __proto__] }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:3:29 error: stage "a" needs unknown stage "constructor"[\s\S]*p\.yaml:3:42 error: stage "a" needs unknown stage "__proto__"/ },
  { name: 'a module that is a device', yaml: 'name: h\nstages:\n  a: { uses: /dev/zero }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:3:14 error: stage "a": local stage module "\/dev\/zero" is not a regular file/ },
  { name: 'a module outside the pipeline\'s folder', yaml: 'name: h\nstages:\n  a: { uses: ../outside.mjs }\n', args: ['validate', 'p.yaml'], expect: /p\.yaml:3:14 error: stage "a": local stage module "\.\.\/outside\.mjs" is outside the pipeline's folder[\s\S]*--allow-modules/ },
  { name: 'data files that are devices', yaml: 'name: h\nstages:\n  d: { uses: dataset, with: { name: csv, train: /dev/zero, test: /dev/urandom, classes: 10, shape: [28, 28] } }\n', args: ['plan', 'p.yaml'], expect: /p\.yaml:3:\d+ error: stage "d": CSV file \/dev\/zero: a character device, not a regular file/ },
  { name: 'a pipeline that is a device', args: ['validate', '/dev/zero'], expect: /\/dev\/zero:1:1 error: cannot read the pipeline file: it is a character device, not a regular file/ },
  { name: 'a pipeline that is a folder', args: ['validate', '.'], expect: /\.:1:1 error: cannot read the pipeline file: it is a folder/ },
  { name: 'a matrix of 160,000 combinations', yaml: bigMatrix, args: ['validate', 'p.yaml'], expect: /p\.yaml:2:1 error: the matrix has 160,000 combinations \(a: 20 × b: 20 × c: 20 × d: 20\), more than the limit of 10,000/ },
  { name: 'more than 100,000 values', yaml: manyValues, args: ['validate', 'p.yaml'], expect: /p\.yaml:3:\d+ error: the file holds more than 100,000 values/ },
  { name: 'a value of 1.1 million characters', yaml: longValue, args: ['validate', 'p.yaml'], expect: /p\.yaml:2:14 error: a value of 1,100,000 characters, more than the limit of 1,048,576/ },
  { name: 'double-quoted values of 2.4 million characters', yaml: quotedValues, args: ['validate', 'p.yaml'], expect: /p\.yaml:5:7 error: double-quoted values hold more than 2,097,152 characters in all/ },
  { name: 'a grid of more than 50,000 instances', yaml: manyInstances, args: ['validate', 'p.yaml'], expect: /p\.yaml:11:3 error: stage "s4" brings the pipeline to 50,001 instances \(10,000 of its own, over j, k\), more than the limit of 50,000/ },
  { name: '300 errors', yaml: manyErrors, args: ['validate', 'p.yaml'], expect: /… and 250 more not shown\n\n300 errors found/ },
  { name: '--store \'\'', yaml: VALID, args: ['plan', 'p.yaml', '--store', ''], expect: /seedflow: --store is empty: name a folder/ },
  { name: '--store naming a file', yaml: VALID, args: ['plan', 'p.yaml', '--store', 'p.yaml'], expect: /seedflow: --store p\.yaml: \S+p\.yaml is a file, not a folder/ },
  { name: '--store under a file', yaml: VALID, args: ['run', 'p.yaml', '--store', 'p.yaml/store'], expect: /seedflow: --store p\.yaml\/store: \S+p\.yaml is a file, so no folder can be made under it/ },
  { name: 'report -o naming a folder', yaml: VALID, args: ['report', 'p.yaml', '-o', 'folder'], expect: /seedflow: -o folder: \S+folder is a folder; name the file to write/ },
  { name: 'report -o under a file', yaml: VALID, args: ['report', 'p.yaml', '-o', 'p.yaml/r.html'], expect: /seedflow: -o p\.yaml\/r\.html: \S+p\.yaml is a file, so nothing can be written under it/ },
];

describe('hostile input', () => {
  for (const row of ROWS) {
    it(`${row.name} is refused with a located message and exit 2, no stack`, async () => {
      const rig = await Rig.create();
      await mkdir(join(rig.dir, 'sub', 'folder'), { recursive: true });
      // The stage module one folder above the pipeline: loading it would leave a file behind.
      await rig.write('outside.mjs', `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(join(rig.dir, 'ran'))}, 'x');\nexport const stage = {};\n`);
      if (row.yaml !== undefined) await rig.write('sub/p.yaml', row.yaml);
      const inSub = runIn(join(rig.dir, 'sub'), row.args);
      assert.equal(inSub.code, 2, inSub.stderr);
      assert.match(inSub.stderr, row.expect);
      assert.doesNotMatch(inSub.stderr, /internal error|\n\s+at .+:\d+:\d+/);
      assert.ok(!existsSync(join(rig.dir, 'ran')), 'the outside module ran');
      assert.ok(inSub.stderr.length < 100_000, `printed ${inSub.stderr.length} characters`);
    });
  }

  it('IDX files that are FIFOs are named as such and never opened', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'data'));
    for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      assert.equal(spawnSync('mkfifo', [join(rig.dir, 'data', name)]).status, 0);
    }
    await rig.write('p.yaml', 'name: h\nstages:\n  d: { uses: dataset, with: { path: data } }\n');
    // A FIFO opened for reading would wait for a writer forever: the run must answer at once.
    const result = runIn(rig.dir, ['run', 'p.yaml']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /p\.yaml:3:\d+ error: stage "d": Fashion-MNIST was not found[\s\S]*train-images-idx3-ubyte \(a FIFO, not a regular file\)/);
  });

  it('a valid file with many aliases is valid', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', manyAliases);
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid \(1501 stages, 1501 instances\)/);
  });

  it('stage ids named like Object\'s properties are ordinary stages', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', 'name: h\nstages:\n  constructor: { uses: dataset }\n  toString: { uses: aggregate, needs: [constructor, valueOf] }\n  __proto__: { uses: dataset }\n  valueOf: { uses: split, needs: [__proto__] }\n  hasOwnProperty: { uses: aggregate, needs: [toString] }\n');
    const result = await rig.run(['dag', 'p.yaml', '--format', 'dot']);
    assert.equal(result.code, 0, result.stderr);
    for (const id of ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty']) assert.match(result.stdout, new RegExp(`"${id}" \\[label`));
    assert.match(result.stdout, /"__proto__" -> "valueOf"/);
  });
});

/** Runs the CLI in `cwd`, a subfolder of the rig, so that a module one folder up is outside the pipeline's tree. */
function runIn(cwd: string, args: readonly string[]): { code: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stderr: result.stderr };
}
