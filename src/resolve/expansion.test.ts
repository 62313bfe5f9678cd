import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expand, mappingFor } from './expansion.ts';

const vars = mappingFor(
  new Map([
    ['A', 'a'],
    ['EMPTY', ''],
    ['B', 'b'],
  ]),
  new Map([
    ['B', 'service-b'],
    ['S', 's'],
  ]),
);

test('replaces known $(VAR) references, first source first', () => {
  assert.equal(expand('x-$(A)-$(B)-$(S)', vars), 'x-a-b-s');
  assert.equal(expand('$(A)$(A)', vars), 'aa');
  assert.equal(expand('[$(EMPTY)]', vars), '[]');
});

test('leaves unknown references as written', () => {
  assert.equal(expand('$(NOPE)/$(A)', vars), '$(NOPE)/a');
  assert.equal(expand('$()', vars), '$()');
});

test('$$ escapes a dollar', () => {
  assert.equal(expand('$$(A)', vars), '$(A)');
  assert.equal(expand('$$$(A)', vars), '$a');
  assert.equal(expand('cost: $$5', vars), 'cost: $5');
});

test('other dollars, unclosed references and a trailing $ stay literal', () => {
  assert.equal(expand('$A $', vars), '$A $');
  assert.equal(expand('$(A', vars), '$(A');
  // The name runs to the first ')', so this looks up "$(A", which is unknown.
  assert.equal(expand('$($(A)', vars), '$($(A)');
  assert.equal(expand('no refs', vars), 'no refs');
  assert.equal(expand('$(A)$', vars), 'a$');
});

test('references do not nest and are not expanded twice', () => {
  const m = mappingFor(new Map([['X', '$(A)']]));
  assert.equal(expand('$(X)', m), '$(A)');
});
