import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SourceFile } from '../src/config/source.js';
import type { MatrixSpec } from '../src/config/spec.js';
import { expandMatrix, type Combination } from '../src/plan/matrix.js';
import type { JsonValue } from '../src/util/json.js';

type Entry = Record<string, JsonValue>;

/** One example of GitHub's "Using a matrix for your jobs": the matrix as written, the jobs it documents, in order. */
interface Row {
  readonly name: string;
  readonly axes: Readonly<Record<string, readonly JsonValue[]>>;
  readonly include?: readonly Entry[];
  readonly exclude?: readonly Entry[];
  readonly expected: readonly Combination[];
}

const rows: readonly Row[] = [
  {
    name: 'a single axis makes one combination per value',
    axes: { version: [10, 12, 14] },
    expected: [{ version: 10 }, { version: 12 }, { version: 14 }],
  },
  {
    name: 'several axes make their product, the first axis outermost',
    axes: { os: ['ubuntu-22.04', 'ubuntu-20.04'], version: [10, 12, 14] },
    expected: [
      { os: 'ubuntu-22.04', version: 10 }, { os: 'ubuntu-22.04', version: 12 }, { os: 'ubuntu-22.04', version: 14 },
      { os: 'ubuntu-20.04', version: 10 }, { os: 'ubuntu-20.04', version: 12 }, { os: 'ubuntu-20.04', version: 14 },
    ],
  },
  {
    name: 'include adds keys, overwrites only added values, and appends what fits no original combination',
    axes: { fruit: ['apple', 'pear'], animal: ['cat', 'dog'] },
    include: [
      { color: 'green' },
      { color: 'pink', animal: 'cat' },
      { fruit: 'apple', shape: 'circle' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ],
    expected: [
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ],
  },
  {
    name: 'include expands the one combination it matches',
    axes: { os: ['windows-latest', 'ubuntu-latest'], node: [14, 16] },
    include: [{ os: 'windows-latest', node: 16, npm: 6 }],
    expected: [
      { os: 'windows-latest', node: 14 },
      { os: 'windows-latest', node: 16, npm: 6 },
      { os: 'ubuntu-latest', node: 14 },
      { os: 'ubuntu-latest', node: 16 },
    ],
  },
  {
    name: 'include that would overwrite an original value adds a combination instead',
    axes: { os: ['windows-latest', 'ubuntu-latest', 'macos-latest'], version: [12, 14, 16] },
    include: [{ os: 'windows-latest', version: 17 }],
    expected: [
      { os: 'windows-latest', version: 12 }, { os: 'windows-latest', version: 14 }, { os: 'windows-latest', version: 16 },
      { os: 'ubuntu-latest', version: 12 }, { os: 'ubuntu-latest', version: 14 }, { os: 'ubuntu-latest', version: 16 },
      { os: 'macos-latest', version: 12 }, { os: 'macos-latest', version: 14 }, { os: 'macos-latest', version: 16 },
      { os: 'windows-latest', version: 17 },
    ],
  },
  {
    name: 'include with only new keys adds them to every combination',
    axes: { node: [14, 16] },
    include: [{ experimental: true }],
    expected: [{ node: 14, experimental: true }, { node: 16, experimental: true }],
  },
  {
    name: 'include without axes makes each entry its own combination',
    axes: {},
    include: [
      { site: 'production', datacenter: 'site-a' },
      { site: 'staging', datacenter: 'site-b' },
    ],
    expected: [
      { site: 'production', datacenter: 'site-a' },
      { site: 'staging', datacenter: 'site-b' },
    ],
  },
  {
    name: 'exclude removes every combination matching all of an entry\'s values, a partial entry several',
    axes: { os: ['macos-latest', 'windows-latest'], version: [12, 14, 16], environment: ['staging', 'production'] },
    exclude: [
      { os: 'macos-latest', version: 12, environment: 'production' },
      { os: 'windows-latest', version: 16 },
    ],
    expected: [
      { os: 'macos-latest', version: 12, environment: 'staging' },
      { os: 'macos-latest', version: 14, environment: 'staging' },
      { os: 'macos-latest', version: 14, environment: 'production' },
      { os: 'macos-latest', version: 16, environment: 'staging' },
      { os: 'macos-latest', version: 16, environment: 'production' },
      { os: 'windows-latest', version: 12, environment: 'staging' },
      { os: 'windows-latest', version: 12, environment: 'production' },
      { os: 'windows-latest', version: 14, environment: 'staging' },
      { os: 'windows-latest', version: 14, environment: 'production' },
    ],
  },
  {
    name: 'include runs after exclude, so it can add back an excluded combination',
    axes: { os: ['linux', 'windows'], node: [14, 16] },
    exclude: [{ os: 'windows', node: 14 }],
    include: [{ os: 'windows', node: 14 }],
    expected: [{ os: 'linux', node: 14 }, { os: 'linux', node: 16 }, { os: 'windows', node: 16 }, { os: 'windows', node: 14 }],
  },
  {
    name: 'object values match an include entry only when equal as a whole',
    axes: { seeding: [{ strategy: 'full' }, { strategy: 'part', percent: 25 }] },
    include: [{ seeding: { strategy: 'full' }, note: 'all seeds' }],
    expected: [{ seeding: { strategy: 'full' }, note: 'all seeds' }, { seeding: { strategy: 'part', percent: 25 } }],
  },
];

describe('matrix expansion follows GitHub Actions\' documented include and exclude rules', () => {
  for (const row of rows) {
    it(row.name, () => {
      const matrix: MatrixSpec = { axes: row.axes, include: row.include ?? [], exclude: row.exclude ?? [] };
      const { combos, diagnostics } = expandMatrix(matrix, new SourceFile('pipeline.yaml', ''));
      assert.deepEqual(diagnostics, []);
      // Combinations are prototype-free maps; compare their content.
      assert.deepEqual(JSON.parse(JSON.stringify(combos)), row.expected);
    });
  }
});

describe('matrix expansion reports what cannot be expanded', () => {
  it('an exclude that removes every combination is a diagnostic', () => {
    const matrix: MatrixSpec = { axes: { k: [10] }, include: [], exclude: [{ k: 10 }] };
    const { diagnostics } = expandMatrix(matrix, new SourceFile('pipeline.yaml', ''));
    assert.match(diagnostics.map((d) => d.message).join('\n'), /exclude" removes every combination/);
  });

  it('an exclude naming an unknown axis is a diagnostic', () => {
    const matrix: MatrixSpec = { axes: { k: [10, 20] }, include: [], exclude: [{ kk: 10 }] };
    const { diagnostics } = expandMatrix(matrix, new SourceFile('pipeline.yaml', ''));
    assert.match(diagnostics.map((d) => d.message).join('\n'), /unknown matrix axis "kk"/);
  });
});
