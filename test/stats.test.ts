import assert from 'node:assert/strict';
import { describe as suite, it } from 'node:test';
import { describe } from '../src/stats/describe.js';
import { averageRanks, comparePaired, holm, pairedTTest, wilcoxonSignedRank } from '../src/stats/paired.js';

/*
 * Reference values from SciPy 1.10.1 (scipy.stats.ttest_rel, scipy.stats.wilcoxon with its
 * defaults, scipy.stats.t.interval and t.ppf), computed once by a short Python script on the
 * samples below and pasted here. `ties` and `zeros` are the normal approximation
 * (wilcoxon(..., method='approx') for `ties`; SciPy switches to it by itself for `zeros`);
 * `large60` is 60 pairs drawn with numpy's default_rng(7).
 */
const CASES = {
  exact10: {
    a: [0.712, 0.705, 0.731, 0.698, 0.72, 0.709, 0.715, 0.701, 0.726, 0.719],
    b: [0.69, 0.711, 0.702, 0.688, 0.705, 0.712, 0.699, 0.69, 0.707, 0.702],
    w: 3.0, wp: 0.009765625, t: 3.8390587509210197, tp: 0.003972246129221227,
  },
  ties: {
    a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    b: [0.0, 0.0, 1.0, 5.0, 3.0, 9.0, 5.0, 6.0],
    w: 9.5, wp: 0.22166801217700272, t: 1.312866364277896, tp: 0.23062875457943094,
  },
  zeros: {
    a: [0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.3],
    b: [0.5, 0.55, 0.75, 0.7, 0.9, 0.2, 0.35],
    w: 5.0, wp: 0.5001842570707944, t: 1.050210063021007, tp: 0.3340693579471511,
  },
  large60: {
    a: [0.700025, 0.705975, 0.694517, 0.682188, 0.690907, 0.680167, 0.701203, 0.726804, 0.690156, 0.687591, 0.709797, 0.707138, 0.702108, 0.681391, 0.699415, 0.713906, 0.673116, 0.690848, 0.661976, 0.674209, 0.663165, 0.695298, 0.674651, 0.705425, 0.703135, 0.696261, 0.649665, 0.689226, 0.69903, 0.702266, 0.669397, 0.690445, 0.68043, 0.683823, 0.721218, 0.683849, 0.69935, 0.717688, 0.688328, 0.697766, 0.702209, 0.701276, 0.675499, 0.701523, 0.727176, 0.669057, 0.717188, 0.702387, 0.687171, 0.740008, 0.715245, 0.676014, 0.70149, 0.711534, 0.696224, 0.713658, 0.69867, 0.713345, 0.72877, 0.686487],
    b: [0.706056, 0.705342, 0.69979, 0.674316, 0.689114, 0.682205, 0.714191, 0.742256, 0.680921, 0.683645, 0.720266, 0.691214, 0.701476, 0.684418, 0.715985, 0.7248, 0.673844, 0.691162, 0.663474, 0.693444, 0.662885, 0.696261, 0.682177, 0.708217, 0.705162, 0.68912, 0.65355, 0.68879, 0.714691, 0.712797, 0.673156, 0.701129, 0.681031, 0.698344, 0.725164, 0.693683, 0.690441, 0.725155, 0.675446, 0.681413, 0.703164, 0.696277, 0.68114, 0.727971, 0.722859, 0.666818, 0.723242, 0.711317, 0.689407, 0.741949, 0.72627, 0.685213, 0.695153, 0.714742, 0.700577, 0.707113, 0.705268, 0.708765, 0.742491, 0.692414],
    w: 529.5, wp: 0.004541033053085255, t: -2.9040439237874502, tp: 0.0051760873990673965,
  },
} as const;

/** scipy.stats.t.interval(0.95, 9, loc=mean(d), scale=sem(d)) for d = exact10.a − exact10.b. */
const EXACT10_CI = [0.005339777788350424, 0.0206602222116496];

function close(actual: number | null, expected: number, tolerance = 1e-9): void {
  assert.ok(actual !== null, `expected ${expected}, got null`);
  assert.ok(Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)), `expected ${expected}, got ${actual}`);
}

suite('statistics against SciPy reference values', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`the paired t-test matches scipy.stats.ttest_rel on the ${name} sample`, () => {
      const result = pairedTTest(c.a, c.b);
      close(result.statistic, c.t);
      close(result.p, c.tp);
    });
    it(`the Wilcoxon signed-rank test matches scipy.stats.wilcoxon on the ${name} sample`, () => {
      const result = wilcoxonSignedRank(c.a, c.b);
      close(result.statistic, c.w);
      close(result.p, c.wp);
    });
  }

  it('the 95% interval of a mean difference matches scipy.stats.t.interval', () => {
    const d = CASES.exact10.a.map((x, i) => x - (CASES.exact10.b[i] as number));
    const description = describe(d);
    assert.equal(description.n, 10);
    close(description.ciLow, EXACT10_CI[0] as number);
    close(description.ciHigh, EXACT10_CI[1] as number);
    const paired = comparePaired(CASES.exact10.a, CASES.exact10.b);
    close(paired.ciLow, EXACT10_CI[0] as number);
    close(paired.diff, ((EXACT10_CI[0] as number) + (EXACT10_CI[1] as number)) / 2);
  });

  it('a one-value sample has a mean but no spread or interval, and an empty one has nothing', () => {
    assert.deepEqual(describe([0.5]), { n: 1, mean: 0.5, sd: null, ciLow: null, ciHigh: null });
    assert.deepEqual(describe([]), { n: 0, mean: null, sd: null, ciLow: null, ciHigh: null });
    assert.equal(describe([1, Number.NaN, 3]).n, 2);
  });

  it('tests of identical samples give no p-value instead of a division by zero', () => {
    assert.equal(pairedTTest([1, 2, 3], [1, 2, 3]).p, null);
    assert.equal(wilcoxonSignedRank([1, 2, 3], [1, 2, 3]).p, null);
  });

  it('ranks share the mean of their places when values tie', () => {
    assert.deepEqual(averageRanks([3, 1, 3, 2]), [3.5, 1, 3.5, 2]);
  });

  it('Holm multiplies the i-th smallest of m p-values by m − i + 1, keeps them monotone and leaves nulls out', () => {
    // m = 4: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 raised to 0.06.
    const adjusted = holm([0.01, 0.04, null, 0.03, 0.005]);
    assert.equal(adjusted[2], null);
    [0.03, 0.06, 0.06, 0.02].forEach((expected, i) => close(adjusted[[0, 1, 3, 4][i] as number] ?? null, expected));
    assert.deepEqual(holm([0.5, 0.9]), [1, 1]);
  });
});
