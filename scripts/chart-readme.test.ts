import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { CHART_DIR, renderReadme, valueRows } from './chart-readme.ts';

const valuesYaml = readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8');

test("the chart README's values table is the one values.yaml gives (node scripts/chart-readme.ts --write)", () => {
  const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
  assert.equal(renderReadme(readme, valuesYaml), readme);
});

test('every documented value is in values.schema.json, and the schema has no key values.yaml lacks', () => {
  type Schema = { properties?: Record<string, Schema>; additionalProperties?: unknown };
  const schema = JSON.parse(readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as Schema;
  const rows = valueRows(valuesYaml);
  for (const row of rows) {
    let node: Schema | undefined = schema;
    for (const part of row.key.split('.')) node = node?.properties?.[part];
    assert.ok(node, `values.schema.json has no property for ${row.key}`);
  }
  const schemaLeaves = (node: Schema, prefix: string): string[] =>
    Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
      const full = prefix ? `${prefix}.${key}` : key;
      return child.properties ? schemaLeaves(child, full) : [full];
    });
  const documented = new Set(rows.map((r) => r.key));
  for (const leaf of schemaLeaves(schema, '')) assert.ok(documented.has(leaf), `values.schema.json has ${leaf}, values.yaml does not document it`);
});

test('a value without a "# --" description is refused by name', () => {
  assert.throws(() => valueRows('# -- documented\na: 1\nb: 2\n'), /values\.yaml: b has no "# -- description" comment/);
  assert.throws(() => valueRows('group:\n  # -- documented\n  x: 1\n  y: []\n'), /group\.y has no/);
  assert.deepEqual(
    valueRows('group:\n  # -- one\n  # and more\n  x: {a: 1}\n').map((r) => [r.key, r.type, r.description]),
    [['group.x', 'object', 'one and more']],
  );
});
