import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './stage-harness.js';
import type { RunEvent } from '../../src/executor/events.js';

/** The compiled CLI the tests drive, as a user would. */
export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
/** The folder of the test stage modules (count, fail...). */
export const STAGES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/stages');

/** What one CLI invocation gave. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as NDJSON events (with --json). */
  readonly events: RunEvent[];
}

/**
 * A scratch project: a temporary folder where tests write pipelines, run the
 * built CLI, and read the invocation log the count stage writes.
 */
export class Rig {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Rig> {
    return new Rig(await tempDir('seedflow-rig-'));
  }

  /** Writes a file into the rig (pipelines, data). */
  async write(name: string, text: string): Promise<string> {
    const file = join(this.dir, name);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
    return file;
  }

  /** The path of the invocation log shared by the count stages. */
  get log(): string {
    return join(this.dir, 'invocations.log');
  }

  /** Lines of the invocation log: one per stage execution, "stage {matrix} pid". */
  async invocations(): Promise<string[]> {
    try {
      return (await readFile(this.log, 'utf8')).split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  }

  /** Starts the CLI without waiting for it. */
  spawn(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
    return spawn(process.execPath, [CLI, ...args], { cwd: this.dir, env: { ...process.env, SEEDFLOW_MODULE_PATH: STAGES, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** Runs the CLI to completion. */
  run(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
    const child = this.spawn(args, env);
    return collect(child);
  }
}

/** Waits for a spawned CLI and gathers its output. */
export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolvePromise) => {
    child.on('close', (code) => {
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RunEvent);
      resolvePromise({ code, stdout, stderr, events });
    });
  });
}

/** The ids of the instances a run executed (stage-end with status done). */
export function executed(result: CliResult): string[] {
  return result.events.flatMap((e) => (e.event === 'stage-end' && e.status === 'done' ? [e.id] : [])).sort();
}
