#!/usr/bin/env node
// Runs the TypeScript sources directly (Node's type stripping); needs Node >= 22.19.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`vk: needs Node >= 22.19 (this is ${process.version}); run it as \`npm run vk -- ...\`, which uses the pinned Node 24\n`);
  process.exit(1);
}
// Memory over speed for the heap: at 10,000 pods peak RSS fell from ~385 to ~210 MiB for ~30% more
// CPU per pod (bench/results). Set before anything is loaded; V8 reads it at each heap sizing.
const v8 = await import('node:v8');
if (process.env.VK_OPTIMIZE_FOR_SIZE !== '0') v8.setFlagsFromString('--optimize-for-size');
// Node's compile cache keeps the type-stripped sources: later starts skip the stripper (faster, ~25 MB less RSS).
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
