/**
 * The Node-side bundles, one config for three targets chosen by `--mode`:
 *   main    → dist/main/main.js       (Electron main, ESM)
 *   preload → dist/preload/preload.cjs (sandboxed preloads must be CommonJS)
 *   cli     → dist/cli/cli.js          (headless engine: Node + Dawn)
 * WGSL is bundled as text (`?raw`), so the outputs need no source tree at run time.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const targets = {
  main: { entry: 'main/main.ts', out: 'main', fileName: 'main.js', format: 'es' },
  preload: { entry: 'main/preload.ts', out: 'preload', fileName: 'preload.cjs', format: 'cjs' },
  cli: { entry: 'app/cli.ts', out: 'cli', fileName: 'cli.js', format: 'es' },
} as const;

export default defineConfig(({ mode }) => {
  const target = targets[mode as keyof typeof targets];
  if (!target) throw new Error(`vite.node.config.ts: --mode must be one of ${Object.keys(targets).join(', ')}`);
  const external = ['electron', 'webgpu', ...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
  return {
    root,
    publicDir: false,
    build: {
      outDir: `${root}dist/${target.out}`,
      emptyOutDir: true,
      target: 'node20',
      ssr: true,
      sourcemap: true,
      minify: false,
      rollupOptions: {
        input: `${root}${target.entry}`,
        external,
        output: { format: target.format, entryFileNames: target.fileName },
      },
    },
    ssr: { noExternal: true, external: ['electron', 'webgpu'] },
  };
});
