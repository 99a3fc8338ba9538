import { Random } from '../util/random.js';

/**
 * How an active-learning round picks the images to label next. The
 * uncertainty strategies rank unlabelled images by the model's predicted
 * class probabilities; `random` draws them; the cold-start-safe ones use the
 * data's structure: `typical` takes, from the clusters holding the fewest
 * labels, each one's most typical unlabelled image (TypiClust's selection),
 * and `cluster-diverse` the most uncertain unlabelled image of those clusters.
 */
export const QUERY_STRATEGIES = ['least-confidence', 'margin', 'entropy', 'random', 'typical', 'cluster-diverse'] as const;
/** A query strategy's name. */
export type QueryStrategy = (typeof QUERY_STRATEGIES)[number];

/** The uncertainty strategies, which need the model's probabilities. */
export type UncertaintyStrategy = 'least-confidence' | 'margin' | 'entropy';

/**
 * How uncertain the model is about each of the n images, larger meaning less
 * sure: 1 - max p (least confidence), p2 - p1 (margin: minus the gap between
 * the two likeliest classes) or -sum p log p (entropy).
 * @param probabilities - n x classes, rows summing to 1.
 */
export function uncertainty(probabilities: Float32Array, classes: number, strategy: UncertaintyStrategy): Float64Array {
  const n = probabilities.length / classes;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let first = -Infinity;
    let second = -Infinity;
    let entropy = 0;
    for (let c = 0, q = i * classes; c < classes; c++, q++) {
      const p = probabilities[q] as number;
      if (p > first) {
        second = first;
        first = p;
      } else if (p > second) second = p;
      if (p > 0) entropy -= p * Math.log(p);
    }
    out[i] = strategy === 'least-confidence' ? 1 - first : strategy === 'margin' ? (classes > 1 ? second - first : -first) : entropy;
  }
  return out;
}

/** What a query may use besides the labelled set. */
export interface QueryInputs {
  readonly strategy: QueryStrategy;
  /** How many images to pick (fewer when fewer are unlabelled). */
  readonly batch: number;
  /** 1 for each image already labelled. */
  readonly labelled: Uint8Array;
  /** For the uncertainty strategies and `cluster-diverse`: the model's probabilities, n x classes. */
  readonly probabilities?: Float32Array;
  readonly classes?: number;
  /** For `typical` and `cluster-diverse`: each image's cluster. */
  readonly clusters?: Int32Array;
  /** For `typical`: each image's typicality (larger is more typical). */
  readonly typicality?: Float64Array;
  /** For `random`: the seed of the draw. */
  readonly seed?: number;
}

/** The best unlabelled image by `score` (ties: the lower index), or -1. */
function best(score: Float64Array, allowed: (i: number) => boolean): number {
  let pick = -1;
  let top = -Infinity;
  for (let i = 0; i < score.length; i++) {
    if (!allowed(i)) continue;
    const s = score[i] as number;
    if (pick < 0 || s > top) {
      pick = i;
      top = s;
    }
  }
  return pick;
}

function need<T>(value: T | undefined, what: string, strategy: QueryStrategy): T {
  if (value === undefined) throw new RangeError(`query strategy "${strategy}" needs ${what}`);
  return value;
}

/**
 * Picks the next images to label, in the order picked; never a labelled one.
 * Deterministic: ties go to the lower index, and `random` draws with its seed.
 */
export function selectQueries(inputs: QueryInputs): Int32Array {
  const { strategy, labelled } = inputs;
  const n = labelled.length;
  const taken = Uint8Array.from(labelled);
  const free = n - taken.reduce((sum, v) => sum + v, 0);
  const batch = Math.max(0, Math.min(inputs.batch, free));
  const picks: number[] = [];
  const take = (i: number): void => {
    taken[i] = 1;
    picks.push(i);
  };
  switch (strategy) {
    case 'least-confidence':
    case 'margin':
    case 'entropy': {
      const score = uncertainty(need(inputs.probabilities, 'the model\'s probabilities', strategy), need(inputs.classes, 'the number of classes', strategy), strategy);
      while (picks.length < batch) take(best(score, (i) => taken[i] === 0));
      break;
    }
    case 'random': {
      const order = new Random(inputs.seed ?? 0).permutation(n);
      for (const i of order) {
        if (picks.length === batch) break;
        if (taken[i] === 0) take(i);
      }
      break;
    }
    case 'typical':
    case 'cluster-diverse': {
      const clusters = need(inputs.clusters, 'a clustering', strategy);
      const score = strategy === 'typical'
        ? need(inputs.typicality, 'typicality', strategy)
        : uncertainty(need(inputs.probabilities, 'the model\'s probabilities', strategy), need(inputs.classes, 'the number of classes', strategy), 'margin');
      const k = clusters.reduce((m, j) => Math.max(m, j + 1), 0);
      const labels = new Int32Array(k);
      const size = new Int32Array(k);
      clusters.forEach((j, i) => {
        size[j] = (size[j] as number) + 1;
        if (taken[i] === 1) labels[j] = (labels[j] as number) + 1;
      });
      while (picks.length < batch) {
        // The cluster with the fewest labels that still has an unlabelled image; the larger one on a tie, then the lower index.
        let cluster = -1;
        for (let j = 0; j < k; j++) {
          if ((labels[j] as number) >= (size[j] as number)) continue;
          if (cluster < 0 || (labels[j] as number) < (labels[cluster] as number) || ((labels[j] as number) === (labels[cluster] as number) && (size[j] as number) > (size[cluster] as number))) cluster = j;
        }
        const pick = best(score, (i) => taken[i] === 0 && clusters[i] === cluster);
        take(pick);
        labels[cluster] = (labels[cluster] as number) + 1;
      }
      break;
    }
  }
  return Int32Array.from(picks);
}

/**
 * Self-training: the unlabelled images the model labels with probability at
 * least `threshold`, with the labels it gives them.
 */
export function confidentPredictions(probabilities: Float32Array, classes: number, labelled: Uint8Array, threshold: number): { readonly indices: Int32Array; readonly labels: Int32Array } {
  const indices: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < labelled.length; i++) {
    if (labelled[i] === 1) continue;
    let top = 0;
    for (let c = 1; c < classes; c++) if ((probabilities[i * classes + c] as number) > (probabilities[i * classes + top] as number)) top = c;
    if ((probabilities[i * classes + top] as number) >= threshold) {
      indices.push(i);
      labels.push(top);
    }
  }
  return { indices: Int32Array.from(indices), labels: Int32Array.from(labels) };
}
