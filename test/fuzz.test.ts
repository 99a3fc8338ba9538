import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EXIT } from '../src/cli/exit-codes.js';
import { DiagnosticError } from '../src/errors/diagnostic.js';
import { checkPipeline } from '../src/executor/prepare.js';
import { tempDir } from './support/stage-harness.js';
import { Rig } from './support/rig.js';

/** A valid pipeline of light built-in stages: the fuzzer's starting point. */
const BASE = `name: fuzz
params:
  validation: 5
  label: run
matrix:
  k: [1, 2]
  seeding:
    - { strategy: full }
    - { strategy: part, percent: 25 }
stages:
  data: { uses: dataset }
  split:
    uses: split
    needs: [data]
    with: { validation: "\${{ params.validation }}", seed: "\${{ matrix.k }}" }
  other: { uses: split, needs: [data], with: { shuffle: true } }
  results: { uses: aggregate, needs: [split, other] }
`;

/** Text an attacker or a careless user puts where a value, key or id belongs. */
const HOSTILE = [
  '.inf', '-.inf', '.nan', '1e999', '-1e999', '123456789012345678901234567890123456789', '0x7fffffffffffffffff',
  '__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype',
  '{ __proto__: { polluted: 1 } }', '{ constructor: { prototype: { polluted: 1 } } }',
  '"${{ matrix.k.__proto__.polluted }}"', '"${{ params.__proto__.polluted }}"', '"${{ matrix.constructor.prototype }}"',
  '"${{ params.constructor }}"', '"${{ matrix.seeding.__proto__ }}"', '"${{ }}"', '"${{ matrix. }}"',
  '*nowhere', '&a 1', '&a [1, *a]', '!!binary aGVsbG8=', '!!js/function "x"', '!!set { a, b }', '<<: { a: 1 }',
  '[' .repeat(200), '{a: '.repeat(150), '- '.repeat(150), '/dev/zero', '/dev/urandom', '../../../etc/passwd', './nope.mjs',
  '~', 'null', '[]', '{}', '""', "''", '|', '>', '%YAML 1.2', '---', '...', '\t', '\u0000', '\uffff', '💥',
];

/** One random edit: a hostile token or arbitrary text put in place of a line's value, key or whole line. */
const edit = fc.record({
  line: fc.nat(),
  where: fc.constantFrom('value', 'key', 'line', 'insert', 'delete'),
  token: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...HOSTILE) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }),
});

function applyEdit(text: string, e: { line: number; where: string; token: string }): string {
  const lines = text.split('\n');
  const i = e.line % lines.length;
  const line = lines[i] ?? '';
  switch (e.where) {
    case 'value': lines[i] = line.replace(/:\s.*$/, `: ${e.token}`); break;
    case 'key': lines[i] = line.replace(/^(\s*)[^:\s]+:/, `$1${e.token}:`); break;
    case 'line': lines[i] = `${line.match(/^\s*/)?.[0] ?? ''}${e.token}`; break;
    case 'insert': lines.splice(i, 0, `${line.match(/^\s*/)?.[0] ?? ''}${e.token}: ${e.token}`); break;
    default: lines.splice(i, 1);
  }
  return lines.join('\n');
}

/** `--set` arguments: names of params, of Object's properties, and hostile or random values. */
const setArg = fc.tuple(
  fc.constantFrom('validation', 'label', '__proto__', 'constructor', 'toString', 'nope', ''),
  fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 30 })),
  fc.constantFrom('=', '', '=='),
).map(([name, value, eq]) => `${name}${eq}${value}`);

/** Runs the CLI and keeps its output as text (some commands print JSON that is not NDJSON). */
function runRaw(rig: Rig, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = rig.spawn(args);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

/** What Object.prototype looks like; any change is pollution. */
function prototypeSnapshot(): string {
  return JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort()) + String(Object.getPrototypeOf(Object.prototype));
}

describe('fuzzing untrusted input', () => {
  it('mutated pipelines and --set values are valid or get located diagnostics, never a crash or a polluted prototype', async () => {
    const dir = await tempDir('seedflow-fuzz-');
    const before = prototypeSnapshot();
    let cases = 0;
    let invalid = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 4 }), fc.array(setArg, { maxLength: 3 }), async (edits, sets) => {
        const text = edits.reduce(applyEdit, BASE);
        const file = join(dir, `p${cases++}.yaml`);
        await writeFile(file, text);
        try {
          await checkPipeline(file, sets);
        } catch (error) {
          assert.ok(error instanceof DiagnosticError, `case ${cases} crashed: ${error instanceof Error ? error.stack : String(error)}\n--- pipeline\n${text}\n--- sets ${JSON.stringify(sets)}`);
          invalid++;
          const lines = text.split('\n').length;
          for (const d of error.diagnostics) {
            assert.ok(d.line >= 1 && d.column >= 1 && d.message.length > 0, `case ${cases}: unlocated diagnostic ${JSON.stringify(d)}`);
            if (d.file === file) assert.ok(d.line <= lines + 1, `case ${cases}: line ${d.line} beyond the file's ${lines}`);
          }
        }
        assert.equal(prototypeSnapshot(), before, `case ${cases} changed Object.prototype`);
        assert.equal(({} as Record<string, unknown>)['polluted'], undefined, `case ${cases} polluted Object.prototype`);
      }),
      { seed: 13, numRuns: 600, endOnFailure: true },
    );
    console.log(`fuzz: ${cases} pipeline cases checked in process, ${invalid} of them invalid`);
    assert.equal(cases, 600);
    assert.ok(invalid > 200 && invalid < 600, `${invalid} of 600 cases were invalid: the mutations test too little`);
  });

  it('random command lines end with a documented exit code, a located or flagged message, bounded output and no stack', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', BASE);
    await rig.write('a-file', 'not a folder');
    await mkdir(join(rig.dir, 'a-folder'), { recursive: true });
    const documented: readonly number[] = Object.values(EXIT).filter((c) => c !== EXIT.internal);
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('validate', 'plan', 'dag', 'results', 'report', 'runs', 'compare', 'gc', 'schema', 'bogus'),
        fc.array(fc.oneof(
          fc.constantFrom('p.yaml', 'a-file', 'a-folder', '/dev/zero', 'missing.yaml', 'latest', 'latest~99'),
          fc.constantFrom('--store', '-o', '--jobs', '--format', '--sort', '--cell', '--force', '--only').chain((flag) =>
            fc.constantFrom('', 'a-file', 'a-file/below', 'a-folder', '0', '-1', '1e999', '__proto__', 'constructor', 'split', 'x'.repeat(300)).map((v) => [flag, v])),
          setArg.map((s) => ['--set', s]),
          fc.constantFrom('--json', '--yes', '--instances', '--nope', '-z'),
        ), { maxLength: 4 }),
        async (command, parts) => {
          cases++;
          const args = [command, ...parts.flat()];
          const result = await runRaw(rig, args);
          const all = result.stdout + result.stderr;
          assert.ok(result.code !== null && documented.includes(result.code), `seedflow ${JSON.stringify(args)} exited ${String(result.code)}:\n${result.stderr}`);
          assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+\)?\n/, `seedflow ${JSON.stringify(args)} printed a stack:\n${result.stderr}`);
          assert.ok(all.length < 200_000, `seedflow ${JSON.stringify(args)} printed ${all.length} characters`);
          if (result.code === EXIT.invalid) {
            assert.match(result.stderr, /:\d+:\d+ error: |seedflow: (--|-o|unknown command|seedflow \w+ takes|Unknown option|Option|.*: )|Run "seedflow help"|^Usage|\/\S+: /m, `seedflow ${JSON.stringify(args)}: exit 2 without a location, flag or path:\n${result.stderr}`);
          }
        },
      ),
      { seed: 13, numRuns: 40, endOnFailure: true },
    );
    console.log(`fuzz: ${cases} command lines run`);
    assert.equal(cases, 40);
  });
});
