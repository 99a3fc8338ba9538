import type { RunEvent } from '../executor/events.js';
import type { StageProgress } from '../stages/types.js';

/** A stage instance running now, as the live view shows it. */
interface Running {
  readonly stage: string;
  readonly started: number;
  readonly where: 'process' | 'worker' | 'queue';
  progress?: StageProgress;
}

/**
 * The state of a run as its events tell it: counts for the grid, what runs
 * now with its latest progress, and how long each stage's instances took
 * (for the ETA). Pure: events in, no clock, no terminal.
 */
export class ProgressModel {
  /** The pipeline's name, from run-start. */
  pipeline = '';
  /** Stages run at once: the ETA spreads the waiting work over them. */
  jobs = 1;
  /** When the run started (ms since the epoch). */
  started: number | undefined;
  /** Every instance of the plan, whatever its state. */
  total = 0;
  cached = 0;
  /** Executed and published in this run. */
  done = 0;
  failed = 0;
  /** Not run because something they need did not complete, or the run stopped. */
  skipped = 0;
  interrupted = 0;
  /** Instances to run that have not started, by stage. */
  readonly waiting = new Map<string, number>();
  readonly running = new Map<string, Running>();
  /** Durations of finished executions, by stage. */
  readonly durations = new Map<string, number[]>();
  private readonly stageOf = new Map<string, string>();

  /**
   * `priors`: a typical duration of one instance of each stage, from earlier
   * runs of the pipeline (the history). The first instances of a run are a
   * poor sample; the prior weighs as PRIOR_WEIGHT of them, so the ETA does
   * not swing while they finish.
   */
  constructor(private readonly priors: ReadonlyMap<string, number> = new Map()) {}

  /** Updates the model with one event. */
  apply(event: RunEvent): void {
    switch (event.event) {
      case 'instance':
        // Instances left out by --only are not part of this run's work.
        if (event.status === 'not-selected') return;
        this.total++;
        this.stageOf.set(event.id, event.stage);
        if (event.status === 'cached') this.cached++;
        else if (event.status === 'run') this.waiting.set(event.stage, (this.waiting.get(event.stage) ?? 0) + 1);
        return;
      case 'run-start':
        this.pipeline = event.pipeline;
        this.jobs = event.jobs;
        this.started = event.time;
        return;
      case 'stage-start':
        this.unwait(event.stage);
        this.running.set(event.id, { stage: event.stage, started: event.time, where: event.where });
        return;
      case 'progress': {
        const running = this.running.get(event.id);
        if (running !== undefined) running.progress = event.progress;
        return;
      }
      case 'stage-end': {
        const wasRunning = this.running.delete(event.id);
        // Instances skipped because an input failed never started: they leave the waiting count here.
        if (!wasRunning) this.unwait(event.stage);
        switch (event.status) {
          case 'done': {
            this.done++;
            const list = this.durations.get(event.stage) ?? [];
            list.push(event.durationMs);
            this.durations.set(event.stage, list);
            return;
          }
          case 'cached':
            this.cached++;
            return;
          case 'failed':
            this.failed++;
            return;
          case 'skipped':
            this.skipped++;
            return;
          case 'interrupted':
            this.interrupted++;
            return;
        }
        return;
      }
      case 'waiting':
      case 'log':
      case 'warning':
      case 'published':
      case 'run-end':
        // Printed as lines above the live block, not part of the model.
        return;
    }
  }

  private unwait(stage: string): void {
    const n = this.waiting.get(stage) ?? 0;
    if (n <= 1) this.waiting.delete(stage);
    else this.waiting.set(stage, n - 1);
  }

  /** Instances to run that have not started yet. */
  get waitingCount(): number {
    let n = 0;
    for (const count of this.waiting.values()) n += count;
    return n;
  }

  /**
   * The expected duration of one instance of a stage: the mean of its
   * finished ones, else a projection from its running ones' progress, else
   * the mean of every finished execution (a rough guess beats no ETA).
   */
  private estimate(stage: string, now: number): number | undefined {
    const finished = this.durations.get(stage) ?? [];
    const prior = this.priors.get(stage);
    if (prior !== undefined) return (finished.reduce((a, b) => a + b, 0) + PRIOR_WEIGHT * prior) / (finished.length + PRIOR_WEIGHT);
    if (finished.length > 0) return mean(finished);
    const projections = [...this.running.values()].filter((r) => r.stage === stage).map((r) => projectedTotal(r, now)).filter((t): t is number => t !== undefined);
    if (projections.length > 0) return mean(projections);
    const all = [...this.durations.values()].flat();
    return all.length > 0 ? mean(all) : undefined;
  }

  /**
   * Milliseconds until the run ends, or undefined until something has
   * finished or reported progress. The waiting work is spread over the jobs;
   * a running instance's own remainder bounds the result from below.
   */
  eta(now: number): number | undefined {
    let work = 0;
    let longest = 0;
    for (const [stage, count] of this.waiting) {
      const each = this.estimate(stage, now);
      if (each === undefined) return undefined;
      work += each * count;
    }
    for (const running of this.running.values()) {
      const total = projectedTotal(running, now) ?? this.estimate(running.stage, now);
      if (total === undefined) return undefined;
      const left = Math.max(0, total - (now - running.started));
      work += left;
      longest = Math.max(longest, left);
    }
    return Math.max(longest, work / Math.max(1, this.jobs));
  }
}

/** How many of this run's instances one stage's duration from the history counts as. */
const PRIOR_WEIGHT = 3;

function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function projectedTotal(running: Running, now: number): number | undefined {
  const p = running.progress;
  if (p === undefined || p.total === undefined || p.step <= 0) return undefined;
  return ((now - running.started) * p.total) / p.step;
}

/** A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `1 h 02 min`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

function metric(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3 ? value.toExponential(2) : String(Number(value.toPrecision(4)));
}

function fit(line: string, width: number): string {
  // One column short of the width: a line that fills it exactly wraps on some terminals, and the redraw counts lines.
  const max = Math.max(10, width - 1);
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * The live view's lines: the grid's counts with the ETA, a bar, then one
 * line per running stage with its latest progress (k-means iteration,
 * training epoch and loss) and its running time.
 */
export function renderProgress(model: ProgressModel, options: { readonly now: number; readonly width: number }): string[] {
  const { now, width } = options;
  const finished = model.done + model.cached + model.failed + model.skipped + model.interrupted;
  const elapsed = model.started === undefined ? 0 : now - model.started;
  const eta = model.eta(now);
  // Each part with the rank at which it is dropped when the line is too wide (the ETA and the count stay).
  const parts: [string, number][] = [
    [`${model.pipeline || 'run'}: ${finished}/${model.total}`, 0],
    [`${model.done} done`, 4],
    [`${model.running.size} running`, 6],
    [`${model.cached} cached`, 2],
    [`${model.failed} failed`, model.failed > 0 ? 7 : 3],
    ...(model.skipped > 0 ? [[`${model.skipped} skipped`, 5] as [string, number]] : []),
    [`${model.waitingCount} waiting`, 1],
    [formatDuration(elapsed), 8],
    [model.running.size + model.waitingCount === 0 ? 'ETA 0 s' : eta === undefined ? 'ETA …' : `ETA ${formatDuration(eta)}`, 0],
  ];
  let head = parts.map(([p]) => p).join(' · ');
  for (let rank = 1; rank <= 8 && [...head].length > width - 1; rank++) head = parts.filter(([, r]) => r === 0 || r > rank).map(([p]) => p).join(' · ');
  const barWidth = Math.max(10, Math.min(40, width - 10));
  const fraction = model.total === 0 ? 0 : finished / model.total;
  const lines = [head, `${bar(fraction, barWidth)} ${Math.floor(fraction * 100)}%`];
  const running = [...model.running.entries()].sort((x, y) => x[1].started - y[1].started);
  for (const [id, r] of running) {
    const parts = [`  ▶ ${id}`];
    const p = r.progress;
    if (p !== undefined) {
      parts.push(`${p.unit} ${p.step}${p.total !== undefined ? `/${p.total}` : ''}`);
      const metrics = Object.entries(p.metrics ?? {}).map(([k, v]) => `${k} ${metric(v)}`);
      if (metrics.length > 0) parts.push(metrics.join(' '));
      if (p.total !== undefined && p.total > 0) parts.push(bar(p.step / p.total, 10));
    }
    parts.push(formatDuration(now - r.started));
    lines.push(parts.join('  '));
  }
  return lines.map((l) => fit(l, width));
}

/** The part of a terminal stream the live view uses. */
export interface LiveStream {
  write(text: string): boolean;
  readonly columns?: number;
}

/**
 * Draws the live view at the bottom of a terminal and redraws it in place
 * (ANSI cursor movement), at most every `intervalMs` and at least every
 * second so running times advance. Lines printed through `print` scroll
 * above it, like a log.
 */
export class LiveProgress {
  private drawn = 0;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;
  private closed = false;

  private readonly model: ProgressModel;

  constructor(private readonly stream: LiveStream, private readonly options: { readonly intervalMs?: number; readonly clock?: () => number; readonly priors?: ReadonlyMap<string, number> } = {}) {
    this.model = new ProgressModel(options.priors);
    this.ticker = setInterval(() => this.draw(), 1000);
    // The ticker must not keep the process alive after the run.
    this.ticker.unref();
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  /**
   * Takes one run event with its log line. The line is printed above the view
   * unless the view itself shows it (progress, a stage starting) or it is a
   * debug line and `verbose` is off.
   */
  event(event: RunEvent, line: { readonly level: string; readonly text: string } | null, verbose = false): void {
    this.model.apply(event);
    const shown = line !== null && event.event !== 'progress' && event.event !== 'stage-start' && (line.level !== 'debug' || verbose);
    if (shown) this.print(line.level === 'info' ? line.text : `${line.level}: ${line.text}`);
    else this.schedule();
  }

  /** Prints a line above the live view. */
  print(text: string): void {
    if (this.closed) {
      this.stream.write(`${text}\n`);
      return;
    }
    this.stream.write(`${this.erase()}${text}\n`);
    this.drawn = 0;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed) return;
    const wait = Math.max(0, (this.options.intervalMs ?? 100) - (this.now() - this.last));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, wait);
  }

  private erase(): string {
    // Back to the first line of the view, then clear to the end of the screen.
    return this.drawn > 0 ? `\x1b[${this.drawn}F\x1b[J` : '\r\x1b[J';
  }

  private draw(): void {
    if (this.closed || this.model.total === 0) return;
    this.last = this.now();
    const lines = renderProgress(this.model, { now: this.last, width: this.stream.columns ?? 80 });
    this.stream.write(`${this.erase()}${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  /** Stops redrawing and removes the view, leaving the printed lines. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.ticker);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.stream.write(this.erase());
    this.drawn = 0;
    this.closed = true;
  }
}
