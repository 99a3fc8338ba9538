import { parentPort, type Worker } from 'node:worker_threads';

/** How a worker thread reports a failure to its parent. */
export interface ThreadErrorReply {
  readonly type: 'error';
  readonly message: string;
  readonly stack?: string;
}

/** In a worker thread: sends a failure to the parent as a ThreadErrorReply. */
export function reportThreadError(error: unknown): void {
  const reply: ThreadErrorReply =
    error instanceof Error ? { type: 'error', message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) } : { type: 'error', message: String(error) };
  parentPort?.postMessage(reply);
}

/** The parent's side of a worker thread that answers each request with one reply. */
export interface ThreadChannel<Reply> {
  /** The next reply (the first one is the worker's "ready"); rejects once the worker failed or exited. */
  next(): Promise<Reply>;
  /** Stops the worker; its exit is then not a failure. */
  close(): Promise<void>;
}

/**
 * Wraps a worker thread that replies to one request at a time. An error reply,
 * an uncaught error or an exit fails the pending reply and every later one;
 * `label` names the worker in those errors.
 */
export function threadChannel<Reply extends { readonly type: string }>(worker: Worker, label: string): ThreadChannel<Exclude<Reply, ThreadErrorReply>> {
  type Ok = Exclude<Reply, ThreadErrorReply>;
  let pending: { resolve: (reply: Ok) => void; reject: (error: Error) => void } | null = null;
  let failure: Error | null = null;
  const fail = (error: Error): void => {
    failure ??= error;
    pending?.reject(error);
    pending = null;
  };
  worker.on('message', (reply: Reply | ThreadErrorReply) => {
    const waiting = pending;
    pending = null;
    if (reply.type === 'error') {
      const { message, stack } = reply as ThreadErrorReply;
      const error = new Error(`${label}: ${message}`);
      if (stack !== undefined) error.stack = stack;
      failure ??= error;
      waiting?.reject(error);
    } else {
      waiting?.resolve(reply as Ok);
    }
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`${label} exited with code ${code}`)));
  return {
    next() {
      const reply = new Promise<Ok>((resolve, reject) => {
        if (failure !== null) reject(failure);
        else pending = { resolve, reject };
      });
      // The caller may stop (abort, error) before it awaits a reply; a later failure must not go unhandled.
      reply.catch(() => {});
      return reply;
    },
    async close() {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}
