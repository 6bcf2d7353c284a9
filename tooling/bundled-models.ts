/**
 * Vite plugin: serves the bundled demo models to the web build exactly as main serves them to
 * the desktop app — the same handler (main/model-protocol.ts), mounted under /bundled/:
 *   GET /bundled/index.json                → { models: ModelEntry[], warnings } (resources/models/*)
 *   GET|HEAD /bundled/<name>/<file>        → the file, with Range support
 * In `vite build --mode web` it also copies them into the output, for a static deployment.
 */
import { promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Plugin } from 'vite';
import { pageIndex } from '../app/library/bundled.js';
import { scanBundledModels } from '../app/node/bundled.js';
import { serveFetch } from '../app/node/serve-fetch.js';
import { createModelHandler, modelBaseUrl, servedFolder } from '../main/model-protocol.js';

const PREFIX = '/bundled/';
const idOf = (name: string) => `bundled:${name}`;

export function bundledModels(folder: string): Plugin {
  const dir = path.resolve(folder);
  let copyIntoBuild = false;
  const scan = () => scanBundledModels(dir, (name) => `bundled/${name}`);
  const handler = createModelHandler(async (id) => {
    const model = (await scan()).models.find((m) => m.id === id);
    return model && servedFolder(model);
  });

  const middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith(PREFIX)) return next();
    const rest = url.pathname.slice(PREFIX.length);
    const run = async () => {
      if (rest === 'index.json') {
        // As the page sees it: no paths of the server's disk (pageIndex).
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'no-store');
        res.end(JSON.stringify(pageIndex(await scan(), dir)));
        return;
      }
      const [name, ...file] = rest.split('/');
      await serveFetch(handler, `${modelBaseUrl(idOf(decodeURIComponent(name ?? '')))}/${file.join('/')}`, req, res);
    };
    run().catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  };

  return {
    name: 'studio-bundled-models',
    configResolved(config) {
      copyIntoBuild = config.command === 'build' && config.mode === 'web';
    },
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
    async generateBundle() {
      if (!copyIntoBuild) return;
      const { models } = await scan();
      this.emitFile({ type: 'asset', fileName: 'bundled/index.json', source: JSON.stringify(pageIndex({ models, warnings: [] }, dir)) });
      for (const model of models) {
        for (const file of model.files) {
          this.emitFile({
            type: 'asset',
            fileName: `bundled/${model.id.replace(/^bundled:/, '')}/${file}`,
            source: await fs.readFile(path.join(model.path ?? '', file)),
          });
        }
      }
    },
  };
}
