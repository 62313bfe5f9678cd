#!/usr/bin/env node
// Runs the TypeScript sources directly (Node's type stripping); needs Node >= 22.19.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`vk: needs Node >= 22.19 (this is ${process.version}); run it as \`npm run vk -- ...\`, which uses the pinned Node 24\n`);
  process.exit(1);
}
// A heap that grows by 10% at a time and an 8 MB young generation: at 10,000 pods peak RSS ~195
// MiB instead of ~425 with V8's defaults. A 2 MB young generation, used before, saved 7 MiB more
// but scavenged so often that it cost 20-28% more CPU per pod (3.20 against 2.31 ms at 10,000
// pods); 16 MB added 29 MiB for no further gain. --optimize-for-size also held back the JIT (4.9
// against 3.9 ms). bench/README.md has the runs. V8 sizes the young generation at start-up only,
// so a process started without the flags replaces itself (execve: same PID, stdio and signals)
// with one that has them.
const HEAP_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=10'];
if (process.env.VK_SMALL_HEAP !== '0' && !HEAP_FLAGS.every((flag) => process.execArgv.includes(flag))) {
  process.execve(process.execPath, [process.execPath, ...HEAP_FLAGS, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
// Node's compile cache keeps the type-stripped sources: later starts skip the stripper (faster, ~25 MB less RSS).
const { enableCompileCache } = await import('node:module');
enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
