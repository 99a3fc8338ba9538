import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paramsOfRound } from '../src/plan/planner.js';
import type { StageTypeInfo } from '../src/plan/types.js';
import { dictOf } from '../src/util/dict.js';

const base: StageTypeInfo = {
  name: 'loop', version: 1, schema: {}, gather: false, heavy: false, numeric: false, readsFiles: false, untracked: [], requires: [], role: null, source: { kind: 'builtin', name: 'loop' },
};
const looping: StageTypeInfo = { ...base, roundParams: { firstIgnores: ['strategy', 'batch'], perRound: ['batch'] } };
const params = { strategy: 'margin', batch: [10, 30, 50], epochs: 5 };

describe('the parameters of a round', () => {
  it('round 1 leaves out what it ignores; round r takes entry r − 2 of a per-round list, the last repeating', () => {
    assert.deepEqual({ ...paramsOfRound(looping, params, 1) }, { epochs: 5 });
    assert.deepEqual([2, 3, 4, 9].map((r) => paramsOfRound(looping, params, r)['batch']), [10, 30, 50, 50]);
    assert.deepEqual({ ...paramsOfRound(looping, params, 3) }, { strategy: 'margin', batch: 30, epochs: 5 });
    // One value for every round stays as it is.
    assert.equal(paramsOfRound(looping, { ...params, batch: 7 }, 5)['batch'], 7);
  });

  it('a type that says nothing of rounds, or an instance outside rounds, gets its params untouched', () => {
    assert.equal(paramsOfRound(base, params, 1), params);
    assert.equal(paramsOfRound(looping, params, undefined), params);
  });

  it('a parameter named __proto__ stays an own value and never reaches Object.prototype', () => {
    const hostile = dictOf<unknown>([['__proto__', { polluted: true }], ['batch', [1, 2]]]) as Record<string, never>;
    const out = paramsOfRound(looping, hostile, 2);
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.equal(out['batch'], 1);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});
