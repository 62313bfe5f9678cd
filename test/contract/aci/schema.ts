// The published ACI API description (test/contract/specs/aci/2023-05-01/containerInstance.json) as a
// validator: operations matched by method and path template, and bodies checked against the
// Swagger 2.0 schemas (type, required, enum, format, $ref, allOf, items, additionalProperties).
// Stricter than ARM on two points, to catch our own mistakes: unknown properties are errors, and
// so are readOnly properties in a request.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The unedited copies in test/contract/specs (origins in its README); VK_ACI_SPEC_DIR overrides. */
export const SPEC_DIR = process.env.VK_ACI_SPEC_DIR ?? path.resolve(import.meta.dirname, '../specs/aci/2023-05-01');

export interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  allOf?: Schema[];
  readOnly?: boolean;
}

interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'body' | 'header';
  required?: boolean;
  type?: string;
  schema?: Schema;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  responses: Record<string, { schema?: Schema }>;
}

interface Spec {
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, Schema>;
  parameters: Record<string, Parameter>;
}

export interface MatchedOperation {
  operationId: string;
  pathParams: Record<string, string>;
  parameters: Parameter[];
  responses: Operation['responses'];
}

export type Mode = 'request' | 'response';

export class AciSpec {
  readonly spec: Spec;
  private readonly routes: { method: string; regex: RegExp; names: string[]; operation: Operation; template: string }[] = [];

  constructor(file = path.join(SPEC_DIR, 'containerInstance.json')) {
    this.spec = JSON.parse(readFileSync(file, 'utf8')) as Spec;
    for (const [template, ops] of Object.entries(this.spec.paths)) {
      const names: string[] = [];
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      for (const [method, operation] of Object.entries(ops)) {
        if (method === 'parameters') continue;
        // ARM matches path segments case-insensitively (resourceGroups vs resourcegroups).
        this.routes.push({ method: method.toUpperCase(), regex: new RegExp(`^${pattern}$`, 'i'), names, operation, template });
      }
    }
  }

  get apiVersion(): string {
    return this.spec.info.version;
  }

  match(method: string, pathname: string): MatchedOperation | undefined {
    for (const r of this.routes) {
      if (r.method !== method) continue;
      const m = r.regex.exec(pathname);
      if (!m) continue;
      const pathParams = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      const parameters = (r.operation.parameters ?? []).map((p) => this.parameter(p));
      return { operationId: r.operation.operationId, pathParams, parameters, responses: r.operation.responses };
    }
    return undefined;
  }

  private parameter(p: Parameter): Parameter {
    if (!p.$ref) return p;
    return this.spec.parameters[p.$ref.split('/').pop()!]!;
  }

  definition(name: string): Schema {
    const d = this.spec.definitions[name];
    if (!d) throw new Error(`no definition ${name}`);
    return d;
  }

  /** Problems of `value` against `schema`, each "<instance path> (<schema path>): <problem>"; empty when valid. */
  validate(value: unknown, schema: Schema, mode: Mode, where = '$', schemaPath = '#'): string[] {
    const problems: string[] = [];
    this.check(value, schema, mode, where, schemaPath, problems);
    return problems;
  }

  /** The properties a schema allows, following $ref and allOf. */
  private flatten(schema: Schema, schemaPath: string): { schema: Schema; path: string; properties: Record<string, [Schema, string]>; required: string[] } {
    if (schema.$ref) {
      const name = schema.$ref.split('/').pop()!;
      return this.flatten(this.definition(name), `#/definitions/${name}`);
    }
    const properties: Record<string, [Schema, string]> = {};
    const required = [...(schema.required ?? [])];
    for (const [k, v] of Object.entries(schema.properties ?? {})) properties[k] = [v, `${schemaPath}/properties/${k}`];
    (schema.allOf ?? []).forEach((part, i) => {
      const f = this.flatten(part, `${schemaPath}/allOf/${i}`);
      Object.assign(properties, f.properties);
      required.push(...f.required);
    });
    return { schema, path: schemaPath, properties, required };
  }

  private check(value: unknown, schema: Schema, mode: Mode, where: string, schemaPath: string, problems: string[]): void {
    const flat = this.flatten(schema, schemaPath);
    const s = flat.schema;
    const at = `${where} (${flat.path})`;
    if (mode === 'request' && s.readOnly) {
      problems.push(`${at}: readOnly property sent in a request`);
      return;
    }
    const type = s.type ?? (Object.keys(flat.properties).length || s.additionalProperties ? 'object' : undefined);
    switch (type) {
      case 'object': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          problems.push(`${at}: expected an object, got ${JSON.stringify(value)}`);
          return;
        }
        const obj = value as Record<string, unknown>;
        for (const r of flat.required) if (obj[r] === undefined) problems.push(`${where}.${r} (${flat.path}/required): required property missing`);
        for (const [k, v] of Object.entries(obj)) {
          const prop = flat.properties[k];
          if (prop) this.check(v, prop[0], mode, `${where}.${k}`, prop[1], problems);
          else if (typeof s.additionalProperties === 'object')
            this.check(v, s.additionalProperties, mode, `${where}.${k}`, `${flat.path}/additionalProperties`, problems);
          else problems.push(`${where}.${k} (${flat.path}/properties): no such property in the schema`);
        }
        return;
      }
      case 'array':
        if (!Array.isArray(value)) {
          problems.push(`${at}: expected an array`);
          return;
        }
        value.forEach((item, i) => this.check(item, s.items ?? {}, mode, `${where}[${i}]`, `${flat.path}/items`, problems));
        return;
      case 'string':
        if (typeof value !== 'string') problems.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
        else if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time: ${value}`);
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) problems.push(`${at}: expected an integer, got ${JSON.stringify(value)}`);
        else if (s.format === 'int32' && (value < -(2 ** 31) || value >= 2 ** 31)) problems.push(`${at}: outside int32`);
        break;
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) problems.push(`${at}: expected a number, got ${JSON.stringify(value)}`);
        break;
      case 'boolean':
        if (typeof value !== 'boolean') problems.push(`${at}: expected a boolean, got ${JSON.stringify(value)}`);
        break;
    }
    if (s.enum && !s.enum.includes(value))
      problems.push(`${at}/enum: ${JSON.stringify(value)} is not one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }

  /** Problems of a query parameter's text against its declared type. */
  checkQuery(parameter: Parameter, text: string): string | undefined {
    if (parameter.type === 'integer' && !/^-?\d+$/.test(text)) return `query ${parameter.name}: expected an integer, got ${text}`;
    if (parameter.type === 'boolean' && text !== 'true' && text !== 'false') return `query ${parameter.name}: expected true or false, got ${text}`;
    return undefined;
  }

  /** An example file's first response body for a status, e.g. example('ContainerGroupUsage.json', '200'). */
  example(file: string, status: string): unknown {
    const parsed = JSON.parse(readFileSync(path.join(SPEC_DIR, 'examples', file), 'utf8')) as { responses: Record<string, { body?: unknown }> };
    return structuredClone(parsed.responses[status]?.body);
  }
}
