/**
 * A worker process: runs tasks sent by the parent, one at a time, reusing
 * what it loaded (TensorFlow, datasets) across them. It exits when the
 * parent goes away, so killing a run never leaves orphans computing.
 */
import { Store } from '../cache/store.js';
import { toFailure } from './failure.js';
import { executeTask, type Task } from './task.js';
import type { ParentMessage, WorkerMessage } from './worker-pool.js';

// The store this worker resolves tasks' keys against; one object, so an input hashed once is not hashed again.
const store = new Store(process.argv[2] ?? 'artifacts');

// After the parent has gone (a failed run closing its pool), a late answer has nowhere to go: drop it
// quietly instead of letting the closed channel print EPIPE with a stack after the run's last line.
const send = (message: WorkerMessage): void => {
  if (process.connected) process.send?.(message, undefined, {}, () => {});
};
const running = new Map<string, AbortController>();

process.on('disconnect', () => process.exit(1));
process.on('message', (message: ParentMessage) => {
  if (message.type === 'abort') {
    running.get(message.task)?.abort();
    return;
  }
  if (message.type === 'warm') {
    // Loaded once per process: the first numeric stage finds it ready. A failure here is left
    // for that stage to meet again and report.
    void import('../ml/backend.js').then(({ loadTf }) => loadTf()).catch(() => {}).finally(() => send({ type: 'warmed' }));
    return;
  }
  const task: Task = message.task;
  const controller = new AbortController();
  running.set(task.id, controller);
  executeTask(task, message.located, store, {
    log: (level, text) => send({ type: 'log', task: task.id, level, message: text }),
    progress: (progress) => send({ type: 'progress', task: task.id, progress }),
  }, controller.signal).then(
    // maxRSS is in kilobytes and covers the worker's whole life: the peak of any stage it ran so far.
    (outcome) => send({ type: 'done', task: task.id, outcome: { ...outcome, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) } }),
    (error: unknown) => send({ type: 'failed', task: task.id, failure: toFailure(error) }),
  ).finally(() => running.delete(task.id));
});
send({ type: 'ready' });
