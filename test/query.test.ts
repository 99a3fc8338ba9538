import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { confidentPredictions, selectQueries, uncertainty } from '../src/ml/query.js';

/** Five images, three classes: a confident one, a two-way tie, a flat one, and two in between. */
const probabilities = Float32Array.from([
  0.9, 0.05, 0.05, // 0: sure
  0.45, 0.45, 0.1, // 1: margin 0, least confidence 0.55
  0.34, 0.33, 0.33, // 2: flat: largest entropy and least confidence 0.66
  0.6, 0.3, 0.1, // 3
  0.5, 0.2, 0.3, // 4
]);

describe('active-learning queries', () => {
  test('each uncertainty measure ranks the worked example as it is defined', () => {
    const order = (scores: Float64Array): number[] => Array.from(scores.keys()).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
    assert.deepEqual(order(uncertainty(probabilities, 3, 'least-confidence')), [2, 1, 4, 3, 0]);
    assert.deepEqual(order(uncertainty(probabilities, 3, 'margin')), [1, 2, 4, 3, 0]);
    assert.deepEqual(order(uncertainty(probabilities, 3, 'entropy')), [2, 4, 1, 3, 0]);
  });

  test('uncertainty strategies pick the most uncertain unlabelled images, never a labelled one', () => {
    const labelled = Uint8Array.from([0, 0, 1, 0, 0]);
    assert.deepEqual(Array.from(selectQueries({ strategy: 'least-confidence', batch: 2, labelled, probabilities, classes: 3 })), [1, 4]);
    assert.deepEqual(Array.from(selectQueries({ strategy: 'margin', batch: 2, labelled, probabilities, classes: 3 })), [1, 4]);
    assert.deepEqual(Array.from(selectQueries({ strategy: 'entropy', batch: 3, labelled, probabilities, classes: 3 })), [4, 1, 3]);
    // A batch larger than what is left takes everything unlabelled.
    assert.deepEqual(Array.from(selectQueries({ strategy: 'entropy', batch: 10, labelled, probabilities, classes: 3 })).sort(), [0, 1, 3, 4]);
  });

  test('random draws a seeded batch of distinct unlabelled images', () => {
    const labelled = new Uint8Array(100);
    labelled.fill(1, 0, 50);
    const a = selectQueries({ strategy: 'random', batch: 10, labelled, seed: 3 });
    assert.deepEqual(a, selectQueries({ strategy: 'random', batch: 10, labelled, seed: 3 }));
    assert.notDeepEqual(a, selectQueries({ strategy: 'random', batch: 10, labelled, seed: 4 }));
    assert.equal(new Set(a).size, 10);
    assert.ok(Array.from(a).every((i) => i >= 50));
  });

  test('typical picks the most typical image of the clusters holding the fewest labels, larger clusters first', () => {
    // Cluster 0: images 0-3 (one labelled), cluster 1: images 4-8, cluster 2: images 9-10.
    const clusters = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2]);
    const typicality = Float64Array.from([9, 1, 5, 2, 1, 2, 8, 3, 4, 7, 6]);
    const labelled = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Clusters 1 and 2 have no label: 1 is larger, so its most typical (6), then 2's (9), then every cluster has one:
    // the largest, 1, again (8 is its next most typical), then 0 (2), then 2 (10).
    assert.deepEqual(Array.from(selectQueries({ strategy: 'typical', batch: 5, labelled, clusters, typicality })), [6, 9, 8, 2, 10]);
  });

  test('cluster-diverse picks the most uncertain image of each cluster with the fewest labels', () => {
    const clusters = Int32Array.from([0, 0, 1, 1, 1]);
    const labelled = Uint8Array.from([0, 0, 0, 0, 0]);
    // Cluster 1 is larger: its smallest margin is image 2 (0.01); then cluster 0's is image 1 (0).
    assert.deepEqual(Array.from(selectQueries({ strategy: 'cluster-diverse', batch: 2, labelled, clusters, probabilities, classes: 3 })), [2, 1]);
  });

  test('a strategy without what it needs is refused, naming it', () => {
    assert.throws(() => selectQueries({ strategy: 'typical', batch: 1, labelled: new Uint8Array(3) }), /needs a clustering/);
    assert.throws(() => selectQueries({ strategy: 'margin', batch: 1, labelled: new Uint8Array(3) }), /needs the model's probabilities/);
  });

  test('self-training adds the unlabelled images predicted with at least the threshold, with their predicted labels', () => {
    const labelled = Uint8Array.from([1, 0, 0, 0, 0]);
    const { indices, labels } = confidentPredictions(probabilities, 3, labelled, 0.5);
    assert.deepEqual(Array.from(indices), [3, 4]);
    assert.deepEqual(Array.from(labels), [0, 0]);
  });
});
