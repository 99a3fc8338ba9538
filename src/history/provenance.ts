import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Where a run's results came from, beyond its params: kept with the run in the history. */
export interface Provenance {
  /** The seedflow version that ran it. */
  readonly seedflow: string;
  readonly node: string;
  /** The pipeline file's text as it was run, and its SHA-256. */
  readonly pipelineText: string;
  readonly pipelineSha256: string;
  /** The git commit of the pipeline's folder, and whether the working tree had changes; null outside a git repository. */
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
}

function git(cwd: string, args: readonly string[]): string | null {
  try {
    // Bounded: a hung git must never hang a run.
    return execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** Gathers a run's provenance: the pipeline text, the git commit (when there is one) and the versions. */
export function gatherProvenance(file: string, seedflow: string): Provenance {
  const text = readFileSync(file, 'utf8');
  const cwd = dirname(resolve(file));
  const commit = git(cwd, ['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(cwd, ['status', '--porcelain', '--untracked-files=no']);
  return {
    seedflow,
    node: process.version,
    pipelineText: text,
    pipelineSha256: createHash('sha256').update(text).digest('hex'),
    git: commit === null ? null : { commit, dirty: status !== null && status !== '' },
  };
}
