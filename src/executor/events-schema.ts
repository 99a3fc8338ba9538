import type { RunEvent } from './events.js';
import type { Failure } from './failure.js';

type Schema = Readonly<Record<string, unknown>>;

/** The version of the event stream's format; a change that breaks a reader bumps it (and the schema's `$id`). */
export const EVENTS_FORMAT = 1;

const time = { type: 'number', description: 'Milliseconds since the epoch.' };
const id = { type: 'string', description: 'A stage instance id, such as train[k=10].' };
const key = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'An artifact key (hex SHA-256).' };
const text = { type: 'string' };

/** An object of exactly these properties, the listed ones required. */
function object(properties: Record<string, unknown>, optional: readonly string[] = []): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties).filter((p) => !optional.includes(p)), properties };
}

/** One schema per failure reason: a mapped type, so a new reason fails to compile until it is described. */
const FAILURES: { readonly [R in Failure['reason']]: Schema } = {
  'stage-threw': object({ reason: { const: 'stage-threw' }, message: text, stack: text }, ['stack']),
  'user-error': object({ reason: { const: 'user-error' }, message: text, hint: text }, ['hint']),
  disk: object({ reason: { const: 'disk' }, message: text, path: text }, ['path']),
  'input-damaged': object({ reason: { const: 'input-damaged' }, input: id, key, detail: text }),
  refused: object({ reason: { const: 'refused' }, message: text, hint: text }, ['hint']),
  'worker-lost': object({ reason: { const: 'worker-lost' }, detail: text }),
  'dependency-failed': object({ reason: { const: 'dependency-failed' }, dependency: id }),
  'run-stopping': object({ reason: { const: 'run-stopping' } }),
  'not-selected': object({ reason: { const: 'not-selected' } }),
  interrupted: object({ reason: { const: 'interrupted' } }),
};

const matrix = { type: 'object', description: 'The instance\'s matrix values (only the axes it is expanded over).' };
const counts = { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } };

/** One schema per event: a mapped type, so a new event fails to compile until it is described. */
const EVENTS: { readonly [E in RunEvent['event']]: Schema } = {
  'run-start': object({ event: { const: 'run-start' }, time, run: text, pipeline: text, jobs: { type: 'integer', minimum: 1 }, backend: text, store: text, instances: { type: 'integer', minimum: 0 }, selected: { type: 'integer', minimum: 0, description: 'Instances selected by --only (all of them without it).' }, toRun: { type: 'integer', minimum: 0 } }, ['selected']),
  instance: object({ event: { const: 'instance' }, time, id, stage: text, matrix, key, status: { enum: ['cached', 'run', 'not-selected'] }, reasons: { type: 'array', items: text } }),
  'stage-start': object({ event: { const: 'stage-start' }, time, id, stage: text, key, where: { enum: ['process', 'worker', 'queue'] } }),
  waiting: object({
    event: { const: 'waiting' }, time, id, stage: text, key,
    holder: object({ pid: { type: 'integer', minimum: 1 }, host: text, command: text }),
  }),
  progress: object({
    event: { const: 'progress' }, time, id,
    progress: object({ unit: text, step: { type: 'number' }, total: { type: 'number' }, metrics: { type: 'object', additionalProperties: { type: 'number' } } }, ['total', 'metrics']),
  }),
  log: object({ event: { const: 'log' }, time, id, level: { enum: ['debug', 'info', 'warn'] }, message: text }),
  'stage-end': object({
    event: { const: 'stage-end' }, time, id, stage: text, key, status: { enum: ['done', 'cached', 'failed', 'interrupted', 'skipped'], description: 'cached: computed by another run on the store while this one waited.' },
    durationMs: { type: 'number', minimum: 0 }, failure: { oneOf: Object.values(FAILURES) }, summary: {}, peakRssMb: { type: 'number' },
    worker: { type: 'string', description: 'The queue worker that ran it (runs with --executor bullmq).' },
  }, ['failure', 'summary', 'peakRssMb', 'worker']),
  published: object({ event: { const: 'published' }, time, id, key, path: text, files: { type: 'array', items: text } }),
  warning: object({ event: { const: 'warning' }, time, message: text, id }, ['id']),
  'run-end': object({ event: { const: 'run-end' }, time, run: text, status: { enum: ['success', 'failed', 'interrupted'] }, durationMs: { type: 'number', minimum: 0 }, counts }),
};

/**
 * The JSON Schema of one line of `run --json` and `plan --json`: one of the
 * events, told apart by `event`. `schemas/events.schema.json` is this, and a
 * test keeps the two equal and checks real streams against it.
 */
export const EVENTS_SCHEMA: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: `https://github.com/seedflow/seedflow/schemas/events-${EVENTS_FORMAT}.schema.json`,
  title: `seedflow NDJSON event, format ${EVENTS_FORMAT}`,
  description: 'One line of `seedflow run --json` or `plan --json`. Readers should ignore events they do not know; new events and new optional fields keep the format, anything else bumps it.',
  oneOf: Object.values(EVENTS),
};
