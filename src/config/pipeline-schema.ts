import { REPLICATES_SCHEMA } from './replicates.js';

/** The most rounds a stage may repeat in: a guard against a typo that would plan millions of instances. */
export const MAX_ROUNDS = 1000;

/** The identifier pattern for stage ids, params and matrix axes. */
export const ID_PATTERN = '^[A-Za-z_][A-Za-z0-9_-]*$';

/**
 * The JSON Schema of a pipeline file, without the stage types' own `with`
 * schemas (those are checked per stage instance, after expressions are
 * resolved). `seedflow schema` prints it with the built-in types' schemas
 * added, which is what `schemas/pipeline.schema.json` holds.
 */
export const PIPELINE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://github.com/seedflow/seedflow/schemas/pipeline.schema.json',
  title: 'seedflow pipeline',
  description: 'A declarative pipeline: parameters, a matrix of experiment axes, and stages that consume each other\'s artifacts.',
  type: 'object',
  required: ['name', 'stages'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'The pipeline\'s name; it also names its run index in the store.' },
    description: { type: 'string', description: 'What the pipeline is for.' },
    params: {
      type: 'object',
      description: 'Named defaults, used in `with` as ${{ params.NAME }} and overridable with --set NAME=VALUE.',
      propertyNames: { pattern: ID_PATTERN },
      additionalProperties: { not: { type: 'null' }, description: 'A default value: text, a number, a boolean, a list or a mapping.' },
    },
    matrix: {
      type: 'object',
      description: 'Experiment axes: each key lists the values of one axis; stages are expanded over the axes they reference.',
      propertyNames: { pattern: ID_PATTERN },
      properties: {
        include: {
          type: 'array',
          description: 'Extra combinations, as in GitHub Actions: added to every matching combination, or appended as new ones.',
          items: { type: 'object', minProperties: 1 },
        },
        exclude: {
          type: 'array',
          description: 'Combinations to remove: each entry removes every combination that has all of its values.',
          items: { type: 'object', minProperties: 1 },
        },
      },
      additionalProperties: {
        description: 'The values of one axis: a list, or "${{ params.NAME }}" to read them from a param (a list, which --set can change).',
        anyOf: [{ type: 'array', minItems: 1 }, { type: 'string' }],
      },
    },
    replicates: REPLICATES_SCHEMA,
    stages: {
      type: 'object',
      description: 'The stages, by id.',
      minProperties: 1,
      propertyNames: { pattern: ID_PATTERN },
      additionalProperties: {
        type: 'object',
        required: ['uses'],
        additionalProperties: false,
        properties: {
          uses: { type: 'string', minLength: 1, description: 'A built-in stage type, or a local module path starting with ./ or ../ (relative to the pipeline file).' },
          needs: {
            type: 'array',
            items: { type: 'string', pattern: ID_PATTERN },
            uniqueItems: true,
            description: 'The ids of the stages whose artifacts this stage consumes.',
          },
          with: { type: 'object', description: 'The stage type\'s parameters; values may use ${{ matrix.AXIS }} and ${{ params.NAME }}.' },
          description: { type: 'string', description: 'What this stage is for.' },
          publish: {
            type: 'string',
            minLength: 1,
            description: 'A folder, relative to the pipeline file, that `run` copies this stage\'s output files into (one subfolder per instance when the stage is expanded over the matrix).',
          },
          rounds: {
            description: 'Repeat this stage in rounds 1 to N, each reading the previous round\'s output (an active-learning loop): a count, or "${{ params.NAME }}". Each round is its own instance over the axis "round" and its own cached artifact, so raising N reuses the earlier rounds.',
            anyOf: [{ type: 'integer', minimum: 1, maximum: MAX_ROUNDS }, { type: 'string', pattern: '^\\s*\\$\\{\\{.*\\}\\}\\s*$' }],
          },
        },
      },
    },
  },
} as const;
