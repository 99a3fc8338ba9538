import { formatP } from '../stats/format.js';
import { escapeXml } from './dag.js';
import type { ResultsTable } from './collect.js';
import { ALPHA, compareGroups, REPLICATE_METRICS, replicateGroups, statColumns } from './replicates.js';

function n3(value: unknown, digits = 4): string {
  return typeof value === 'number' && Number.isFinite(value) ? String(Number(value.toPrecision(digits))) : '–';
}

/**
 * The report's results with replicates: a table of each cell's mean ± 95%
 * interval over its replicates, and the comparisons table with significant
 * differences (Holm-adjusted paired t-test below ALPHA) marked.
 */
export function statisticsSection(table: ResultsTable): string {
  const groups = replicateGroups(table);
  const metrics = REPLICATE_METRICS.filter((m) => groups.some((g) => typeof g.row[statColumns(m).mean] === 'number'));
  const head = ['cell', ...metrics.map((m) => `${m.split('.').at(-1) ?? m} (mean ± 95% CI)`), 'sd of accuracy', 'replicates'];
  const cell = (text: string, numeric: boolean): string => `<td${numeric ? ' class="num"' : ''}>${escapeXml(text)}</td>`;
  const rows = groups.map((g) => {
    const values = metrics.map((m) => {
      const names = statColumns(m);
      const mean = g.row[names.mean];
      const low = g.row[names.low];
      const high = g.row[names.high];
      return typeof low === 'number' && typeof high === 'number' ? `${n3(mean)} ± ${n3((high - low) / 2, 2)}` : n3(mean);
    });
    return `<tr>${cell(g.label, false)}${values.map((v) => cell(v, true)).join('')}${cell(n3(g.row[statColumns('evaluate.accuracy').sd], 2), true)}${cell(String(g.row['n']), true)}</tr>`;
  });
  const stats = `<div class="scroll"><table id="statistics"><thead><tr>${head.map((h, i) => `<th${i > 0 ? ' class="num"' : ''}>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div>`;

  const comparisons = compareGroups(groups);
  const cHead = ['a', 'b', 'n', 'a − b (test accuracy)', '95% CI', 'p (t)', 'p (t, Holm)', 'p (Wilcoxon)', 'p (Wilcoxon, Holm)'];
  const cRows = comparisons.map((c) => {
    const ci = c.ciLow === null || c.ciHigh === null ? '–' : `[${n3(c.ciLow, 3)}, ${n3(c.ciHigh, 3)}]`;
    const cells = [c.a, c.b, String(c.n), `${n3(c.diff, 3)}${c.significant ? ' *' : ''}`, ci, formatP(c.tP) || '–', formatP(c.tPHolm) || '–', formatP(c.wilcoxonP) || '–', formatP(c.wilcoxonPHolm) || '–'];
    return `<tr${c.significant ? ' class="significant"' : ''}>${cells.map((t, i) => cell(t, i >= 2)).join('')}</tr>`;
  });
  const significant = comparisons.filter((c) => c.significant).length;
  const compare = comparisons.length === 0
    ? '<p class="note">No comparison yet: pairs need the same K, or a random baseline with as many labels as a strategy looks up.</p>'
    : `<div class="scroll"><table id="comparisons"><thead><tr>${cHead.map((h, i) => `<th${i >= 2 ? ' class="num"' : ''}>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${cRows.join('\n')}</tbody></table></div>`
      + `<p class="meta">Paired by replicate seed. Holm's adjustment over the ${comparisons.length} comparisons of each test; <strong>*</strong> and a highlighted row mark a Holm-adjusted paired t-test p below ${ALPHA} (${significant} of ${comparisons.length}). With n replicates the exact Wilcoxon test cannot go below p = 2/2<sup>n</sup>.</p>`;
  return `${stats}\n<h3>Comparisons</h3>\n${compare}`;
}
