// `node tooling/run-step-encode-probe.js [shape …]`: runs tooling/step-encode-probe.ts (TypeScript, through Vite's
// module runner) on Dawn's adapter, loaded here (the runner is closed once the module is in). Without a GPU:
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create(process.env.DAWN_FLAGS ? process.env.DAWN_FLAGS.split(' ') : []);
const { module } = await runnerImport(fileURLToPath(new URL('./step-encode-probe.ts', import.meta.url)), { configFile: false, logLevel: 'warn' });
try {
  process.exitCode = await module.main(process.argv.slice(2), gpu);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
