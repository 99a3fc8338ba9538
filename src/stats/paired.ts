import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import { describe, mean, standardDeviation } from './describe.js';

/** A two-sided test's statistic and p-value; the p-value is null where the test is undefined (too few pairs, no spread). */
export interface TestResult {
  readonly statistic: number | null;
  readonly p: number | null;
}

/**
 * The paired t-test of a − b, two-sided, as scipy.stats.ttest_rel: t is the
 * mean difference over its standard error, with n − 1 degrees of freedom.
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): TestResult {
  const d = differences(a, b);
  const n = d.length;
  if (n < 2) return { statistic: null, p: null };
  const sd = standardDeviation(d);
  const m = mean(d);
  if (sd === 0) return { statistic: null, p: null };
  const t = m / (sd / Math.sqrt(n));
  return { statistic: t, p: Math.min(1, 2 * tCdf(-Math.abs(t), n - 1)) };
}

function differences(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length (${a.length} and ${b.length})`);
  return a.map((x, i) => x - (b[i] as number));
}

/** Average ranks (1-based) of values, ties sharing the mean of their ranks. */
export function averageRanks(values: readonly number[]): number[] {
  const order = values.map((v, i) => ({ v, i })).sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(values.length).fill(0);
  let start = 0;
  while (start < order.length) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]?.v === order[start]?.v) end++;
    const rank = (start + end) / 2 + 1;
    for (let j = start; j <= end; j++) ranks[order[j]?.i ?? 0] = rank;
    start = end + 1;
  }
  return ranks;
}

/** The exact null distribution of the signed-rank sum R+ for n pairs: counts of each sum 0 … n(n+1)/2, over 2^n. */
function signedRankCounts(n: number): number[] {
  const max = (n * (n + 1)) / 2;
  let counts = new Array<number>(max + 1).fill(0);
  counts[0] = 1;
  for (let r = 1; r <= n; r++) {
    const next = [...counts];
    for (let s = r; s <= max; s++) next[s] = (next[s] ?? 0) + (counts[s - r] ?? 0);
    counts = next;
  }
  return counts;
}

/** Above this many pairs the exact distribution gives way to the normal approximation, as in scipy. */
export const WILCOXON_EXACT_MAX = 50;

/**
 * The Wilcoxon signed-rank test of a − b, two-sided, as
 * scipy.stats.wilcoxon's defaults: zero differences dropped ("wilcox"), the
 * statistic min(R+, R−); the exact distribution for at most 50 pairs without
 * zeros or ties, otherwise the normal approximation with the tie correction
 * of the variance and no continuity correction.
 */
export function wilcoxonSignedRank(a: readonly number[], b: readonly number[]): TestResult {
  const all = differences(a, b);
  const d = all.filter((x) => x !== 0);
  const n = d.length;
  if (n === 0) return { statistic: null, p: null };
  const ranks = averageRanks(d.map(Math.abs));
  let plus = 0;
  let minus = 0;
  d.forEach((x, i) => {
    if (x > 0) plus += ranks[i] ?? 0;
    else minus += ranks[i] ?? 0;
  });
  const statistic = Math.min(plus, minus);
  const ties = new Map<number, number>();
  for (const r of ranks) ties.set(r, (ties.get(r) ?? 0) + 1);
  const tied = [...ties.values()].some((c) => c > 1);
  if (all.length <= WILCOXON_EXACT_MAX && n === all.length && !tied) {
    const counts = signedRankCounts(n);
    const total = 2 ** n;
    const r = Math.round(plus);
    if (r * 2 === counts.length - 1) return { statistic, p: 1 };
    let below = 0;
    let above = 0;
    counts.forEach((c, s) => {
      if (s <= r) below += c;
      if (s >= r) above += c;
    });
    return { statistic, p: Math.min(1, (2 * Math.min(below, above)) / total) };
  }
  const expected = (n * (n + 1)) / 4;
  let variance = n * (n + 1) * (2 * n + 1);
  for (const c of ties.values()) if (c > 1) variance -= 0.5 * c * (c * c - 1);
  const se = Math.sqrt(variance / 24);
  if (se === 0) return { statistic, p: null };
  const z = (statistic - expected) / se;
  return { statistic, p: Math.min(1, 2 * normalCdf(-Math.abs(z), 0, 1)) };
}

/** A paired comparison of a − b over matched replicates. */
export interface PairedComparison {
  readonly n: number;
  /** The mean difference with its 95% Student-t interval. */
  readonly diff: number | null;
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
  readonly tTest: TestResult;
  readonly wilcoxon: TestResult;
}

/** Compares paired samples: the mean difference a − b with its interval, the paired t-test and the Wilcoxon signed-rank test. */
export function comparePaired(a: readonly number[], b: readonly number[]): PairedComparison {
  const d = describe(differences(a, b));
  return { n: d.n, diff: d.mean, ciLow: d.ciLow, ciHigh: d.ciHigh, tTest: pairedTTest(a, b), wilcoxon: wilcoxonSignedRank(a, b) };
}

/**
 * Holm's step-down adjustment of a family of p-values: the i-th smallest of
 * m is multiplied by m − i + 1, made monotone and capped at 1. Null p-values
 * are not part of the family and stay null.
 */
export function holm(pValues: readonly (number | null)[]): (number | null)[] {
  const present = pValues.map((p, i) => ({ p, i })).filter((x): x is { p: number; i: number } => x.p !== null).sort((x, y) => x.p - y.p);
  const m = present.length;
  const out: (number | null)[] = pValues.map(() => null);
  let running = 0;
  present.forEach(({ p, i }, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    out[i] = running;
  });
  return out;
}
