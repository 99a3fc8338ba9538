import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { suggest, type Diagnostic } from '../errors/diagnostic.js';
import type { DocPath, SourceFile } from './source.js';

const Ajv = AjvModule.default;

/** One ajv instance for the process: compiled validators are cached on it. */
const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, useDefaults: true });
const compiled = new WeakMap<object, ValidateFunction>();

/** Compiles (once) a JSON Schema. */
export function compileSchema(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (validate === undefined) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** Checks that a stage type's schema is itself a valid JSON Schema; returns ajv's complaint or null. */
export function schemaProblem(schema: object): string | null {
  try {
    compileSchema(schema);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Where a value sits: the document path of the value and a label for messages. */
export interface SchemaTarget {
  readonly source: SourceFile;
  /** The path in the YAML document of the value being validated. */
  readonly base: DocPath;
  /** Prefix for messages, e.g. `stage "train": `. */
  readonly label: string;
  /** Where a value came from an expression: the expression text, to point at it. */
  readonly origin?: (path: readonly string[]) => DocPath | undefined;
}

/**
 * Validates `value` (mutating it with the schema's defaults) and turns every
 * ajv error into a located diagnostic with a hint.
 */
export function validateWithSchema(schema: object, value: unknown, target: SchemaTarget): Diagnostic[] {
  const validate = compileSchema(schema);
  if (validate(value)) return [];
  return (validate.errors ?? []).flatMap((error) => toDiagnostic(error, target));
}

function toDiagnostic(error: ErrorObject, target: SchemaTarget): Diagnostic[] {
  const path = error.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const docPath = [...target.base, ...(target.origin?.(path) ?? path).map((p) => (/^\d+$/.test(String(p)) ? Number(p) : p))];
  const where = path.length > 0 ? `"${path.join('.')}"` : 'the value';
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params['additionalProperty']);
      const allowed = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return [target.source.atPath([...docPath, key], `${target.label}unknown key "${key}"${path.length ? ` in ${where}` : ''}`, suggest(key, allowed), 'key')];
    }
    case 'required': {
      const key = String(params['missingProperty']);
      return [target.source.atPath(docPath, `${target.label}missing required field "${key}"${path.length ? ` in ${where}` : ''}`, undefined, 'key')];
    }
    case 'type': {
      const actual = Array.isArray(error.data) ? 'array' : error.data === null ? 'null' : typeof error.data;
      return [target.source.atPath(docPath, `${target.label}${where} must be ${String(params['type']).replace(',', ' or ')}, got ${actual}${actual === 'string' || actual === 'number' ? ` ${JSON.stringify(error.data)}` : ''}`)];
    }
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map(String);
      return [target.source.atPath(docPath, `${target.label}${where} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(error.data)}`, suggest(String(error.data), allowed))];
    }
    case 'propertyNames':
      return [];
    case 'pattern':
      if (error.propertyName !== undefined) {
        return [target.source.atPath([...docPath, error.propertyName], `${target.label}invalid name "${error.propertyName}": use letters, digits, "_" and "-", starting with a letter or "_"`, undefined, 'key')];
      }
      return [target.source.atPath(docPath, `${target.label}${where} must match the pattern ${String(params['pattern'])}`)];
    case 'if':
    case 'anyOf':
    case 'oneOf':
      // The branch errors that ajv reports alongside say what is actually wrong.
      return [];
    default:
      return [target.source.atPath(docPath, `${target.label}${where} ${error.message ?? 'is invalid'}`)];
  }
}
