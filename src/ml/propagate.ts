import type { KnnGraph } from './knn.js';

/** How labels spread over the graph. */
export const PROPAGATION_METHODS = ['spreading', 'poisson'] as const;
/** A propagation method's name. */
export type PropagationMethod = (typeof PROPAGATION_METHODS)[number];

/** A symmetric weighted graph in compressed rows (an edge may appear twice; weights then add). */
export interface WeightedGraph {
  readonly n: number;
  readonly start: Int32Array;
  readonly to: Int32Array;
  readonly weight: Float64Array;
  /** Each node's degree, the sum of its weights. */
  readonly degree: Float64Array;
}

/**
 * The symmetric weight matrix W + W^T of a kNN graph with self-tuning
 * Gaussian weights, w(i, j) = exp(-4 |x_i - x_j|^2 / r_i^2), r_i the
 * distance to i's k-th neighbour (the weights of Calder et al.'s
 * GraphLearning, where Poisson learning is defined).
 */
export function weightedGraph(graph: KnnGraph): WeightedGraph {
  const { n, k, indices, distances } = graph;
  const count = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    for (let m = 0; m < k; m++) {
      count[i + 1] = (count[i + 1] as number) + 1;
      const j = indices[i * k + m] as number;
      count[j + 1] = (count[j + 1] as number) + 1;
    }
  }
  for (let i = 0; i < n; i++) count[i + 1] = (count[i + 1] as number) + (count[i] as number);
  const start = Int32Array.from(count);
  const fill = Int32Array.from(count);
  const to = new Int32Array(2 * n * k);
  const weight = new Float64Array(2 * n * k);
  const degree = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const radius = distances[i * k + k - 1] as number;
    const scale = radius > 0 ? 4 / (radius * radius) : 0;
    for (let m = 0; m < k; m++) {
      const j = indices[i * k + m] as number;
      const dist = distances[i * k + m] as number;
      const w = scale === 0 ? 1 : Math.exp(-scale * dist * dist);
      for (const [a, b] of [[i, j], [j, i]] as const) {
        const p = fill[a] as number;
        fill[a] = p + 1;
        to[p] = b;
        weight[p] = w;
        degree[a] = (degree[a] as number) + w;
      }
    }
  }
  return { n, start, to, weight, degree };
}

/** out = W v for one column of values. */
function multiply(g: WeightedGraph, v: Float64Array, out: Float64Array): void {
  for (let i = 0; i < g.n; i++) {
    let s = 0;
    for (let p = g.start[i] as number, end = g.start[i + 1] as number; p < end; p++) s += (g.weight[p] as number) * (v[g.to[p] as number] as number);
    out[i] = s;
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/**
 * Conjugate gradients for A u = b with A symmetric positive (semi)definite,
 * from u = 0, until the residual is `tolerance` times |b| or `maxIter` steps.
 * On a consistent semidefinite system the iterates stay orthogonal to A's
 * null space, so they converge to its minimum-norm solution.
 */
export function conjugateGradient(apply: (v: Float64Array, out: Float64Array) => void, b: Float64Array, tolerance: number, maxIter: number): { readonly u: Float64Array; readonly iterations: number } {
  const n = b.length;
  const u = new Float64Array(n);
  const r = Float64Array.from(b);
  const p = Float64Array.from(b);
  const ap = new Float64Array(n);
  let rr = dot(r, r);
  const stop = tolerance * tolerance * rr;
  let iterations = 0;
  while (iterations < maxIter && rr > stop && rr > 0) {
    apply(p, ap);
    const pap = dot(p, ap);
    if (!(pap > 0)) break;
    const alpha = rr / pap;
    for (let i = 0; i < n; i++) {
      u[i] = (u[i] as number) + alpha * (p[i] as number);
      r[i] = (r[i] as number) - alpha * (ap[i] as number);
    }
    const next = dot(r, r);
    const beta = next / rr;
    rr = next;
    for (let i = 0; i < n; i++) p[i] = (r[i] as number) + beta * (p[i] as number);
    iterations++;
  }
  return { u, iterations };
}

/** What propagation gives every node. */
export interface Propagated {
  /** The predicted class of each node. */
  readonly labels: Int32Array;
  /** How sure the method is, for ranking nodes (see {@link propagate}). */
  readonly confidence: Float64Array;
  /** Solver iterations, summed over classes. */
  readonly iterations: number;
}

/** Options of {@link propagate}. */
export interface PropagateOptions {
  readonly method: PropagationMethod;
  readonly classes: number;
  /** Label spreading's alpha in (0, 1): how far labels travel (Zhou et al. use 0.99). */
  readonly alpha?: number;
  readonly tolerance?: number;
  readonly maxIter?: number;
}

/**
 * Labels every node of the graph from a few labelled ones.
 *
 * `spreading` (Zhou et al., 2004) solves (I - alpha S) F = Y with S =
 * D^-1/2 W D^-1/2 and Y the labelled nodes' one-hot rows; a node takes the
 * class of its largest score, and its confidence is that score's share of
 * the row's sum.
 *
 * `poisson` (Calder et al., ICML 2020) solves L U = B with L = D - W and B
 * the labelled nodes' one-hot rows minus their mean, shifts each column so
 * that its degree-weighted mean is zero (a weak uniform coupling joins the
 * components a kNN graph may have), and takes the class of the largest
 * score weighted by (1/classes) / (the class's share of the labels), which
 * corrects for classes labelled more or less often than their prior; the
 * confidence is the margin between the two largest weighted scores.
 */
export function propagate(graph: WeightedGraph, seeds: Int32Array, seedLabels: Int32Array, options: PropagateOptions): Propagated {
  const { n } = graph;
  const { classes, method } = options;
  const tolerance = options.tolerance ?? 1e-6;
  const maxIter = options.maxIter ?? 1000;
  if (seeds.length !== seedLabels.length) throw new RangeError('seeds and their labels differ in length');
  const perClass = new Float64Array(classes);
  seedLabels.forEach((y) => {
    if (y < 0 || y >= classes) throw new RangeError(`label ${y} outside [0, ${classes})`);
    perClass[y] = (perClass[y] as number) + 1;
  });
  const scores: Float64Array[] = [];
  let iterations = 0;
  const scratch = new Float64Array(n);
  if (method === 'spreading') {
    const alpha = options.alpha ?? 0.99;
    const inv = Float64Array.from(graph.degree, (d) => (d > 0 ? 1 / Math.sqrt(d) : 0));
    const apply = (v: Float64Array, out: Float64Array): void => {
      for (let i = 0; i < n; i++) scratch[i] = (v[i] as number) * (inv[i] as number);
      multiply(graph, scratch, out);
      for (let i = 0; i < n; i++) out[i] = (v[i] as number) - alpha * (out[i] as number) * (inv[i] as number);
    };
    for (let c = 0; c < classes; c++) {
      const b = new Float64Array(n);
      seeds.forEach((row, s) => {
        if (seedLabels[s] === c) b[row] = 1 - alpha;
      });
      const solved = conjugateGradient(apply, b, tolerance, maxIter);
      iterations += solved.iterations;
      scores.push(solved.u);
    }
  } else {
    const m = seeds.length;
    let degreeSum = 0;
    for (let i = 0; i < n; i++) degreeSum += graph.degree[i] as number;
    // A kNN graph can fall apart into components, where L U = B has no solution (B need not sum to zero on
    // each). A weak uniform coupling, epsilon (I - 11^T/n), joins them; it barely moves the solution inside
    // a component, and a component whose seeds all carry one class gets that class.
    const epsilon = (1e-3 * degreeSum) / n;
    const apply = (v: Float64Array, out: Float64Array): void => {
      multiply(graph, v, out);
      let mean = 0;
      for (let i = 0; i < n; i++) mean += v[i] as number;
      mean /= n;
      for (let i = 0; i < n; i++) out[i] = (graph.degree[i] as number) * (v[i] as number) - (out[i] as number) + epsilon * ((v[i] as number) - mean);
    };
    for (let c = 0; c < classes; c++) {
      const b = new Float64Array(n);
      const mean = (perClass[c] as number) / m;
      seeds.forEach((row, s) => {
        b[row] = (b[row] as number) + (seedLabels[s] === c ? 1 : 0) - mean;
      });
      const solved = conjugateGradient(apply, b, tolerance, maxIter);
      iterations += solved.iterations;
      const u = solved.u;
      let weighted = 0;
      for (let i = 0; i < n; i++) weighted += (graph.degree[i] as number) * (u[i] as number);
      const shift = degreeSum > 0 ? weighted / degreeSum : 0;
      // A class no seed carries gets no weight: it cannot be predicted.
      const weight = (perClass[c] as number) > 0 ? 1 / classes / ((perClass[c] as number) / m) : 0;
      for (let i = 0; i < n; i++) u[i] = weight === 0 ? -Infinity : weight * ((u[i] as number) - shift);
      scores.push(u);
    }
  }
  const labels = new Int32Array(n);
  const confidence = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let first = -Infinity;
    let second = -Infinity;
    let total = 0;
    for (let c = 0; c < classes; c++) {
      const s = (scores[c] as Float64Array)[i] as number;
      if (s > 0 && Number.isFinite(s)) total += s;
      if (s > first) {
        second = first;
        first = s;
        best = c;
      } else if (s > second) second = s;
    }
    labels[i] = best;
    confidence[i] = method === 'spreading' ? (total > 0 ? Math.max(0, first) / total : 0) : Number.isFinite(second) ? first - second : first;
  }
  // The labelled nodes keep their own labels, with the highest confidence.
  seeds.forEach((row, s) => {
    labels[row] = seedLabels[s] as number;
    confidence[row] = Infinity;
  });
  return { labels, confidence, iterations };
}
