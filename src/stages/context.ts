import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeNpy } from '../util/npy.js';
import type { StageContext, StageProgress } from './types.js';

/** What the engine supplies to build a stage's context. */
export interface ContextOptions {
  readonly outDir: string;
  readonly signal: AbortSignal;
  readonly instance: StageContext['instance'];
  readonly log: (level: 'debug' | 'info' | 'warn', message: string) => void;
  readonly progress: (progress: StageProgress) => void;
  readonly files?: readonly string[];
}

/** Builds the context a stage's `run` receives. */
export function makeContext(options: ContextOptions): StageContext {
  return {
    outDir: options.outDir,
    signal: options.signal,
    instance: options.instance,
    log: options.log,
    progress: options.progress,
    files: options.files ?? [],
    writeJson: (name, value) => writeFile(join(options.outDir, name), JSON.stringify(value, null, 2)),
    writeNpy: (name, array) => writeFile(join(options.outDir, name), encodeNpy(array)),
  };
}
