// `npm run bench:heatmap`: runs tooling/bench-heatmap.ts (TypeScript, through Vite's module runner).
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const { module } = await runnerImport(fileURLToPath(new URL('./bench-heatmap.ts', import.meta.url)), { configFile: false, logLevel: 'warn' });
try {
  process.exitCode = await module.main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
