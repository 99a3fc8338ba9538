import { describeFailure } from '../executor/failure.js';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { formatDiagnostic, type Diagnostic } from '../errors/diagnostic.js';
import { COMMAND_LINE } from '../config/overrides.js';
import { shortKey } from '../cache/key.js';
import type { RunEvent } from '../executor/events.js';
import { describeCompute } from '../ml/backend.js';
import { formatMatrix } from '../plan/matrix.js';
import type { InstanceState } from '../plan/states.js';
import type { Plan } from '../plan/types.js';

/** The most diagnostics printed at once; the rest are counted. */
export const MAX_DIAGNOSTICS_SHOWN = 50;

/** Formats diagnostics with their source lines; `--set` problems show the command-line argument. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], sets: readonly string[]): string {
  const sources = new Map<string, string>();
  const lineOf = (d: Diagnostic): string | undefined => {
    if (d.file === COMMAND_LINE) return sets.find((s) => d.message.startsWith(`--set ${s}:`));
    if (!sources.has(d.file)) {
      try {
        // Only a regular file of a sane size is shown: a device or FIFO named as the pipeline would never end.
        const stat = statSync(d.file);
        sources.set(d.file, stat.isFile() && stat.size <= 16 * 1024 * 1024 ? readFileSync(d.file, 'utf8') : '');
      } catch {
        sources.set(d.file, '');
      }
    }
    return lineAt(sources.get(d.file) ?? '', d.line);
  };
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const shown = diagnostics.slice(0, MAX_DIAGNOSTICS_SHOWN);
  const body = shown.map((d) => formatDiagnostic(d, lineOf(d))).join('\n\n');
  const rest = diagnostics.length - shown.length;
  const more = rest > 0 ? `\n\n… and ${rest} more not shown` : '';
  return `${body}${more}\n\n${errors} error${errors === 1 ? '' : 's'} found`;
}

/** Line `n` (from 1) of a text, found without splitting the whole text into lines. */
function lineAt(text: string, n: number): string | undefined {
  let start = 0;
  for (let i = 1; i < n; i++) {
    const next = text.indexOf('\n', start);
    if (next < 0) return undefined;
    start = next + 1;
  }
  if (start > text.length || text === '') return undefined;
  const end = text.indexOf('\n', start);
  return text.slice(start, end < 0 ? text.length : end).replace(/\r$/, '');
}

/** A plain text table with left-aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** The `plan` view: one line per instance with its matrix values, short key and state. */
export function formatPlan(plan: Plan, states: ReadonlyMap<string, InstanceState>): string {
  const counts = { cached: 0, run: 0, 'not-selected': 0 };
  const rows: string[][] = [['STAGE', 'MATRIX', 'KEY', 'STATE']];
  for (const instance of plan.instances) {
    const state = states.get(instance.id) ?? { status: 'run', reasons: ['new'] };
    counts[state.status]++;
    const what = state.status === 'cached' ? 'cached' : `${state.status === 'run' ? 'will run' : 'not selected'}: ${state.reasons.join('; ')}`;
    rows.push([instance.stage, formatMatrix(instance.matrix) || '-', shortKey(instance.key), what]);
  }
  const head = `${plan.name}: ${plan.instances.length} instances, ${counts.cached} cached, ${counts.run} to run${counts['not-selected'] ? `, ${counts['not-selected']} not selected` : ''}`;
  return `${head}\n${table(rows)}`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One human line for an event, or null for events the human view leaves out. */
export function describeEvent(event: RunEvent): { level: 'info' | 'warn' | 'error' | 'debug'; text: string } | null {
  switch (event.event) {
    case 'run-start':
      return { level: 'info', text: `seedflow: ${event.pipeline}: ${event.selected < event.instances ? `${event.selected} of ${event.instances} instances selected (--only)` : `${event.instances} instances`}, ${event.selected - event.toRun} cached, ${event.toRun} to run, ${event.jobs} job${event.jobs === 1 ? '' : 's'}${event.backend === 'none' ? '' : `, TensorFlow backend ${describeCompute(event.backend)}`} (store ${event.store})` };
    case 'stage-start':
      return { level: 'info', text: `  ▶ ${event.id}${event.where === 'process' ? '' : ` (${event.where})`}` };
    case 'progress': {
      const p = event.progress;
      const metrics = Object.entries(p.metrics ?? {}).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(' ');
      return { level: 'debug', text: `    ${event.id}: ${p.unit} ${p.step}${p.total !== undefined ? `/${p.total}` : ''} ${metrics}` };
    }
    case 'log':
      return { level: event.level === 'warn' ? 'warn' : 'debug', text: `    ${event.id}: ${event.message}` };
    case 'waiting':
      return { level: 'info', text: `  … ${event.id}: waiting for process ${event.holder.pid}${event.holder.host !== hostname() ? ` on ${event.holder.host}` : ''} ("${event.holder.command}"), which is computing it` };
    case 'stage-end': {
      if (event.status === 'cached') return { level: 'info', text: `  ✓ ${event.id} (computed by another run)` };
      if (event.status === 'done' || event.failure === undefined) return { level: 'info', text: `  ✓ ${event.id} (${seconds(event.durationMs)}${event.worker !== undefined ? ` on ${event.worker}` : ''})` };
      const { message, hint } = describeFailure(event.failure);
      if (event.status === 'skipped') return { level: 'info', text: `  - ${event.id}: ${message}` };
      if (event.status === 'interrupted') return { level: 'warn', text: `  ■ ${event.id}: interrupted` };
      return { level: 'error', text: `  ✗ ${event.id} failed: ${message}${hint !== undefined ? `\n      hint: ${hint}` : ''}` };
    }
    case 'published':
      return { level: 'info', text: `  → ${event.id}: ${event.files.length} file${event.files.length === 1 ? '' : 's'} published to ${event.path}` };
    case 'warning':
      return { level: 'warn', text: event.id ? `${event.id}: ${event.message}` : event.message };
    case 'run-end': {
      const c = event.counts;
      return { level: event.status === 'success' ? 'info' : 'error', text: `seedflow: ${event.status} in ${seconds(event.durationMs)}: ${c['done'] ?? 0} ran, ${c['cached'] ?? 0} cached, ${c['failed'] ?? 0} failed, ${c['skipped'] ?? 0} skipped${c['interrupted'] ? `, ${c['interrupted']} interrupted` : ''}` };
    }
    case 'instance':
      // Debug level: shown with --verbose, one line per instance that says what will happen to it.
      return { level: 'debug', text: `  · ${event.id}: ${event.status === 'run' ? `will run (${event.reasons.join(', ')})` : event.status}` };
  }
}
