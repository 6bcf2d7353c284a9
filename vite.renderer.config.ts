/**
 * The renderer: one build for the desktop app (dist/renderer, loaded from app://studio) and, with
 * `--mode web`, for the browser (dist/web, bundled models copied in). `npm run web` serves it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { CONTENT_SECURITY_POLICY_META } from './app/csp.js';
import { bundledModels } from './tooling/bundled-models.js';

const root = fileURLToPath(new URL('.', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

/** The CSP as a meta tag in built pages (the dev server's inline preamble would break it). */
const cspMeta = (): Plugin => ({
  name: 'studio-csp-meta',
  apply: 'build',
  transformIndexHtml: () => [
    { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY_META }, injectTo: 'head-prepend' },
  ],
});

export default defineConfig(({ mode }) => ({
  root: `${root}renderer`,
  base: './',
  publicDir: false,
  define: { __APP_VERSION__: JSON.stringify(pkg.version) },
  plugins: [react(), cspMeta(), bundledModels(`${root}resources/models`)],
  worker: { format: 'es' },
  build: {
    outDir: `${root}dist/${mode === 'web' ? 'web' : 'renderer'}`,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: { port: 5173, strictPort: false, fs: { allow: [root] } },
}));
