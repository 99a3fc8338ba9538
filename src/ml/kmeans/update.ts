/** The means of the clusters (an empty cluster keeps its centre), and the squared shift from `centers`, summed. */
export function updateCenters(centers: Float32Array, sums: Float64Array, counts: Int32Array, k: number, d: number): { next: Float32Array; shift: number } {
  const next = new Float32Array(k * d);
  let shift = 0;
  for (let j = 0; j < k; j++) {
    const count = counts[j] as number;
    for (let f = 0, q = j * d; f < d; f++, q++) {
      const v = count > 0 ? (sums[q] as number) / count : (centers[q] as number);
      next[q] = v;
      const delta = v - (centers[q] as number);
      shift += delta * delta;
    }
  }
  return { next, shift };
}

/** Moves point i's row from one cluster's sum to another's. */
export function moveRow(points: Float32Array, d: number, i: number, from: number, to: number, sums: Float64Array, counts: Int32Array): void {
  for (let f = 0, p = i * d, a = from * d, b = to * d; f < d; f++, p++, a++, b++) {
    const v = points[p] as number;
    sums[a] = (sums[a] as number) - v;
    sums[b] = (sums[b] as number) + v;
  }
  counts[from] = (counts[from] as number) - 1;
  counts[to] = (counts[to] as number) + 1;
}

/**
 * Gives each empty cluster the point farthest from its centre (ties: lowest
 * index), taken from a cluster that keeps at least one point, so that the
 * result does not depend on anything but the data.
 */
export function relocateEmptyClusters(
  points: Float32Array,
  d: number,
  k: number,
  labels: Int32Array,
  squared: Float64Array,
  sums: Float64Array,
  counts: Int32Array,
): number[] {
  const moved: number[] = [];
  for (let j = 0; j < k; j++) {
    if (counts[j] !== 0) continue;
    let far = -1;
    let farDist = -1;
    for (let i = 0; i < labels.length; i++) {
      const dist = squared[i] as number;
      if (dist > farDist && (counts[labels[i] as number] as number) > 1) {
        far = i;
        farDist = dist;
      }
    }
    if (far < 0) break;
    const from = labels[far] as number;
    for (let f = 0; f < d; f++) {
      const v = points[far * d + f] as number;
      sums[from * d + f] = (sums[from * d + f] as number) - v;
      sums[j * d + f] = v;
    }
    counts[from] = (counts[from] as number) - 1;
    counts[j] = 1;
    labels[far] = j;
    squared[far] = 0;
    moved.push(far);
  }
  return moved;
}

/** Sums are recomputed from scratch while more than 1/INCREMENTAL_SHARE of the labels change per iteration. */
export const INCREMENTAL_SHARE = 5;

export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

