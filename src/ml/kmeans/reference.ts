import { checkArguments } from './arguments.js';
import { exactDistances, squaredDistance } from './distance.js';
import { DEFAULTS, type KMeansOptions, type KMeansResult } from './types.js';

/**
 * The slow reference: the `ml-kmeans` package run from the same explicit
 * initial centres, then a final exact assignment. Only for small data, to
 * check {@link kmeans} in tests.
 */
export async function kmeansReference(
  points: Float32Array,
  n: number,
  d: number,
  options: KMeansOptions & { readonly init: Float32Array },
): Promise<KMeansResult> {
  checkArguments(points, n, d, options);
  const { kmeans: mlKmeans } = await import('ml-kmeans');
  const { k } = options;
  const rows = Array.from({ length: n }, (_, i) => Array.from(points.subarray(i * d, i * d + d)));
  const initialization = Array.from({ length: k }, (_, j) => Array.from(options.init.subarray(j * d, j * d + d)));
  // A zero tolerance runs to the fixed point, where both implementations must agree.
  const result = mlKmeans(rows, k, { initialization, maxIterations: options.maxIter ?? DEFAULTS.maxIter, tolerance: 0 });
  const centers = Float32Array.from(result.centroids.flat());
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestDist = Infinity;
    for (let j = 0; j < k; j++) {
      const s = squaredDistance(points, centers, d, i, j);
      if (s < bestDist) {
        best = j;
        bestDist = s;
      }
    }
    labels[i] = best;
  }
  const { distances, inertia } = exactDistances(points, n, d, centers, labels);
  return { centers, assignment: labels, distances, inertia, iterations: result.iterations, scoredRows: n * result.iterations };
}

