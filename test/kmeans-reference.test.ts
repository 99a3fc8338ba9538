import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { compileSchema } from '../src/config/validate-schema.js';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { kmeans } from '../src/ml/kmeans/kmeans.js';
import { stage as kmeansStage } from '../src/stages/kmeans.js';
import { Random } from '../src/util/random.js';

/** Well separated blobs, so that every start converges to the same partition. */
function blobs(n: number, d: number, k: number, seed: number): Float32Array {
  const random = new Random(seed);
  const points = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let f = 0; f < d; f++) points[i * d + f] = (i % k) * 3 * (f === (i % k) % d ? 1 : 0) + random.next();
  return points;
}

describe('the ml-kmeans reference algorithm', () => {
  let tf: Tf;
  before(async () => {
    ({ tf } = await loadTf());
  });

  test('reference and lloyd reach the same inertia from the same seeded starts', async () => {
    const n = 400;
    const d = 6;
    const points = blobs(n, d, 4, 11);
    for (const seed of [0, 1, 2]) {
      const options = { k: 4, seed, nInit: 2, maxIter: 200, tol: 0 };
      const lloyd = await kmeans(tf, points, n, d, { ...options, algorithm: 'lloyd' });
      const reference = await kmeans(tf, points, n, d, { ...options, algorithm: 'reference' });
      assert.ok(Math.abs(reference.inertia - lloyd.inertia) <= 1e-4 * lloyd.inertia, `seed ${seed}: ${reference.inertia} vs ${lloyd.inertia}`);
    }
  });

  test('the kmeans stage accepts algorithm: reference', () => {
    const validate = compileSchema(kmeansStage.schema);
    assert.equal(validate({ k: 3, algorithm: 'reference' }), true);
  });
});
