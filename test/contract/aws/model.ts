// An AWS service model (botocore's service-2.json, unedited in test/contract/specs/aws/) and a
// validator for values against its shapes: required members, unknown members, types, enums,
// min/max (length, count or value) and patterns. Each problem names its shape path, e.g.
// `RunTaskRequest.networkConfiguration.awsvpcConfiguration.subnets: required member missing`.
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ShapeRef {
  shape: string;
}

export interface Shape {
  type: 'structure' | 'list' | 'map' | 'string' | 'integer' | 'long' | 'double' | 'float' | 'boolean' | 'timestamp' | 'blob';
  required?: string[];
  members?: Record<string, ShapeRef>;
  member?: ShapeRef;
  key?: ShapeRef;
  value?: ShapeRef;
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
  exception?: boolean;
}

interface Operation {
  name: string;
  input?: ShapeRef;
  output?: ShapeRef;
  errors?: ShapeRef[];
}

export interface ServiceModel {
  metadata: { targetPrefix: string; serviceId: string; apiVersion: string; protocol: string };
  operations: Record<string, Operation>;
  shapes: Record<string, Shape>;
}

/** The specs folder: $AWS_SPECS_DIR, else the unedited copies in test/contract/specs/aws (origins in its README). */
export function specsDir(): string {
  return process.env.AWS_SPECS_DIR ?? path.resolve(import.meta.dirname, '../specs/aws');
}

export function loadModel(service: 'ecs/2014-11-13' | 'logs/2014-03-28'): ServiceModel {
  return JSON.parse(readFileSync(path.join(specsDir(), service, 'service-2.json'), 'utf8')) as ServiceModel;
}

/** The first example's output of an operation in examples-1.json, if the model has one. */
export function exampleOutput(service: 'ecs/2014-11-13', operation: string): unknown {
  const examples = JSON.parse(readFileSync(path.join(specsDir(), service, 'examples-1.json'), 'utf8')) as {
    examples: Record<string, { output?: unknown }[]>;
  };
  return examples.examples[operation]?.[0]?.output;
}

const patterns = new Map<string, RegExp>();

function pattern(source: string): RegExp {
  let re = patterns.get(source);
  if (!re) {
    // Smithy patterns are ECMA 262 regexes matched anywhere in the value (not anchored); \p{..} needs the u flag.
    re = new RegExp(source, 'u');
    patterns.set(source, re);
  }
  return re;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Every problem with `value` as shape `name`, each prefixed with its path (empty when it conforms). */
export function validateShape(model: ServiceModel, name: string, value: unknown, at: string = name): string[] {
  const shape = model.shapes[name];
  if (!shape) return [`${at}: the model has no shape ${name}`];
  const problems: string[] = [];
  const fail = (text: string) => problems.push(`${at}: ${text}`);
  const range = (n: number, what: string) => {
    if (shape.min !== undefined && n < shape.min) fail(`${what} ${n} is below the minimum ${shape.min} (shape ${name})`);
    if (shape.max !== undefined && n > shape.max) fail(`${what} ${n} is above the maximum ${shape.max} (shape ${name})`);
  };
  switch (shape.type) {
    case 'structure': {
      if (kindOf(value) !== 'object') return [`${at}: expected a structure (${name}), got ${kindOf(value)}`];
      const record = value as Record<string, unknown>;
      for (const key of shape.required ?? []) if (record[key] === undefined) fail(`required member ${key} missing (shape ${name})`);
      for (const [key, member] of Object.entries(record)) {
        const ref = shape.members?.[key];
        if (!ref) {
          fail(`unknown member ${key} (shape ${name} has ${Object.keys(shape.members ?? {}).join(', ')})`);
          continue;
        }
        if (member === undefined) continue;
        problems.push(...validateShape(model, ref.shape, member, `${at}.${key}`));
      }
      break;
    }
    case 'list': {
      if (!Array.isArray(value)) return [`${at}: expected a list (${name}), got ${kindOf(value)}`];
      range(value.length, 'length');
      value.forEach((item, i) => problems.push(...validateShape(model, shape.member!.shape, item, `${at}[${i}]`)));
      break;
    }
    case 'map': {
      if (kindOf(value) !== 'object') return [`${at}: expected a map (${name}), got ${kindOf(value)}`];
      const entries = Object.entries(value as Record<string, unknown>);
      range(entries.length, 'size');
      for (const [key, item] of entries) {
        problems.push(...validateShape(model, shape.key!.shape, key, `${at}{key ${JSON.stringify(key)}}`));
        problems.push(...validateShape(model, shape.value!.shape, item, `${at}.${key}`));
      }
      break;
    }
    case 'string': {
      if (typeof value !== 'string') return [`${at}: expected a string (${name}), got ${kindOf(value)}`];
      if (shape.enum && !shape.enum.includes(value)) fail(`${JSON.stringify(value)} is not one of ${shape.enum.join(', ')} (shape ${name})`);
      range([...value].length, 'length');
      if (shape.pattern && !pattern(shape.pattern).test(value)) fail(`${JSON.stringify(value)} does not match the pattern ${shape.pattern} (shape ${name})`);
      break;
    }
    case 'integer':
    case 'long': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return [`${at}: expected an integer (${name}), got ${JSON.stringify(value)}`];
      if (shape.type === 'integer' && (value < -(2 ** 31) || value >= 2 ** 31)) fail(`${value} does not fit a 32-bit integer (shape ${name})`);
      range(value, 'value');
      break;
    }
    case 'double':
    case 'float':
      if (typeof value !== 'number') return [`${at}: expected a number (${name}), got ${kindOf(value)}`];
      range(value, 'value');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: expected a boolean (${name}), got ${kindOf(value)}`];
      break;
    case 'timestamp':
      // awsJson1_1 sends timestamps as epoch seconds.
      if (typeof value !== 'number') return [`${at}: expected a timestamp in epoch seconds (${name}), got ${kindOf(value)}`];
      break;
    case 'blob':
      if (typeof value !== 'string') return [`${at}: expected base64 text (${name}), got ${kindOf(value)}`];
      break;
  }
  return problems;
}
