// Re-renders latest.md and latest.svg from a results directory's latest.json (after editing or
// merging it by hand), and prints the Markdown; a second argument names another result set
// (`many-nodes`: many-nodes.json to many-nodes.md/.svg).
//
//   node bench/render.ts [bench/results] [latest]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { renderMarkdown, renderSvg, type BenchResult } from './report.ts';

const dir = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, 'results'));
const name = process.argv[3] ?? 'latest';
const result = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as BenchResult;
const md = renderMarkdown(result);
writeFileSync(path.join(dir, `${name}.md`), md);
writeFileSync(path.join(dir, `${name}.svg`), renderSvg(result));
process.stdout.write(md);
