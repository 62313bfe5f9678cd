#!/usr/bin/env node
// Runs the TypeScript sources directly (Node's type stripping); needs Node >= 22.19.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`vk: needs Node >= 22.19 (this is ${process.version}); run it as \`npm run vk -- ...\`, which uses the pinned Node 24\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
