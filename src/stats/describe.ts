import tQuantile from '@stdlib/stats-base-dists-t-quantile';

/** A sample's summary: its size, mean, standard deviation and 95% confidence interval of the mean. */
export interface Description {
  readonly n: number;
  readonly mean: number | null;
  /** The sample standard deviation (n − 1 in the denominator); null below two values. */
  readonly sd: number | null;
  /** The 95% Student-t confidence interval of the mean; null below two values. */
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
}

/** The confidence level of every interval seedflow prints. */
export const CONFIDENCE = 0.95;

/** The mean of a non-empty sample. */
export function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** The sample standard deviation (n − 1), from two values on. */
export function standardDeviation(values: readonly number[]): number {
  const m = mean(values);
  let squares = 0;
  for (const v of values) squares += (v - m) * (v - m);
  return Math.sqrt(squares / (values.length - 1));
}

/** Half the width of the Student-t confidence interval of the mean of n values with standard deviation sd. */
export function tHalfWidth(sd: number, n: number, confidence = CONFIDENCE): number {
  return tQuantile(1 - (1 - confidence) / 2, n - 1) * sd / Math.sqrt(n);
}

/** Describes a sample (non-finite values are left out): n, mean, sd and the 95% Student-t interval of the mean. */
export function describe(sample: readonly number[]): Description {
  const values = sample.filter((v) => Number.isFinite(v));
  const n = values.length;
  if (n === 0) return { n, mean: null, sd: null, ciLow: null, ciHigh: null };
  const m = mean(values);
  if (n === 1) return { n, mean: m, sd: null, ciLow: null, ciHigh: null };
  const sd = standardDeviation(values);
  const half = tHalfWidth(sd, n);
  return { n, mean: m, sd, ciLow: m - half, ciHigh: m + half };
}
