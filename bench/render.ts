// Re-renders latest.md and latest.svg from a results directory's latest.json (after editing or
// merging it by hand), and prints the Markdown.
//
//   node bench/render.ts [bench/results]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderMarkdown, renderSvg, type BenchResult } from './report.ts';

const dir = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, 'results'));
const result = JSON.parse(readFileSync(path.join(dir, 'latest.json'), 'utf8')) as BenchResult;
const md = renderMarkdown(result);
writeFileSync(path.join(dir, 'latest.md'), md);
writeFileSync(path.join(dir, 'latest.svg'), renderSvg(result));
process.stdout.write(md);
