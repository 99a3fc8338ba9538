/** seedflow's exit codes, documented in the README. */
export const EXIT = {
  /** Everything asked for is done (or valid). */
  ok: 0,
  /** A stage failed. */
  stageFailed: 1,
  /** The pipeline, its data, the command line or a store file is invalid: diagnostics (or the path) were printed. */
  invalid: 2,
  /** Another seedflow process holds the store's lock (use --wait to wait for it). */
  locked: 3,
  /** The queue's Redis went away during a run: the run stopped; a re-run resumes from the cache. */
  queueLost: 4,
  /** A bug in seedflow: it printed "internal error" with a stack. */
  internal: 70,
  /** Interrupted by Ctrl-C or SIGTERM. */
  interrupted: 130,
} as const;
