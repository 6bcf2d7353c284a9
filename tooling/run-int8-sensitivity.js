// `node tooling/run-int8-sensitivity.js [layers] [d_model] [tokens]`: runs tooling/int8-sensitivity.ts (TypeScript, through Vite's module runner).
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const { module } = await runnerImport(fileURLToPath(new URL('./int8-sensitivity.ts', import.meta.url)), { configFile: false, logLevel: 'warn' });
try {
  process.exitCode = await module.main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
