// One line for a zod error, naming the field: every config file, flag and protocol body is reported this way.
import type { z } from 'zod';

const ARTICLE: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (/received undefined$/.test(issue.message)) return `required (${issue.expected})`;
      // A custom message (quantity) wins over the generic one.
      return issue.message.startsWith('Invalid input') ? `expected ${ARTICLE[issue.expected] ?? issue.expected}` : issue.message;
    case 'too_small':
      return issue.origin === 'string' || issue.origin === 'array' ? 'must not be empty' : `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/** One line for a zod error: the first issue's path and problem, and how many more there are. */
export function formatZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  let path = issue.path;
  let text = describeIssue(issue);
  if (issue.code === 'unrecognized_keys') {
    // Name the offending key itself, not its parent object.
    path = [...issue.path, issue.keys[0] ?? ''];
    text = issue.keys.length > 1 ? `unknown field (also ${issue.keys.slice(1).join(', ')})` : 'unknown field';
  }
  const where = formatPath(path);
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${where ? `${where}: ` : ''}${text}${more}`;
}
