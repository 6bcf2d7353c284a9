/**
 * Vite plugin: serves the bundled demo models to the web build, as main does on the desktop.
 *   GET /bundled/index.json        → { models: ModelEntry[] } from resources/models/*
 *   GET|HEAD /bundled/<name>/<file> → the file, with single-range `Range` support
 * In `vite build --mode web` it also copies them into the output, for a static deployment.
 */
import { createReadStream, promises as fs } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Plugin } from 'vite';
import type { ModelEntry } from '../app/contract.js';
import { bundledModelEntry, parseJsonFile } from '../app/formats/bundled.js';

const PREFIX = '/bundled/';

export async function scanBundledModels(dir: string): Promise<{ models: ModelEntry[]; warnings: string[] }> {
  const models: ModelEntry[] = [];
  const warnings: string[] = [];
  let names: string[];
  try {
    names = (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  } catch {
    return { models, warnings: [`${dir}: no bundled models folder`] };
  }
  for (const name of names) {
    const folder = path.join(dir, name);
    try {
      const files = [];
      for (const file of await fs.readdir(folder)) {
        const stat = await fs.stat(path.join(folder, file));
        if (stat.isFile()) files.push({ name: file, size: stat.size });
      }
      const read = async (file: string) => parseJsonFile(`${name}/${file}`, await fs.readFile(path.join(folder, file), 'utf8'));
      models.push(bundledModelEntry({ name, files, studio: await read('studio.json'), config: await read('config.json') }, `bundled/${name}`));
    } catch (error) {
      warnings.push(error instanceof Error ? error.message : String(error));
    }
  }
  return { models, warnings };
}

async function serve(dir: string, req: IncomingMessage, res: ServerResponse, next: () => void): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith(PREFIX)) return next();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.statusCode = 405;
    res.end();
    return;
  }
  const rest = decodeURIComponent(url.pathname.slice(PREFIX.length));
  if (rest === 'index.json') {
    const body = JSON.stringify(await scanBundledModels(dir));
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'no-store');
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  const file = path.resolve(dir, rest);
  const stat = path.relative(dir, file).startsWith('..') ? null : await fs.stat(file).catch(() => null);
  if (!stat?.isFile()) {
    res.statusCode = 404;
    res.end(`bundled model file not found: ${rest}`);
    return;
  }
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  let start = 0;
  let end = stat.size - 1;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range);
    const s = m?.[1] ? Number(m[1]) : m?.[2] ? stat.size - Number(m[2]) : NaN;
    const e = m?.[1] && m[2] ? Math.min(Number(m[2]), stat.size - 1) : stat.size - 1;
    if (!m || !Number.isFinite(s) || s < 0 || s > e || s >= stat.size) {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${stat.size}`);
      res.end();
      return;
    }
    [start, end] = [s, e];
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${stat.size}`);
  }
  res.setHeader('Content-Length', String(end - start + 1));
  if (req.method === 'HEAD' || stat.size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).pipe(res);
}

export function bundledModels(dir: string): Plugin {
  let copyIntoBuild = false;
  const middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    serve(dir, req, res, next).catch((error: unknown) => {
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
      const { models } = await scanBundledModels(dir);
      this.emitFile({ type: 'asset', fileName: 'bundled/index.json', source: JSON.stringify({ models, warnings: [] }) });
      for (const model of models) {
        const name = model.id.replace(/^bundled:/, '');
        for (const file of model.files) {
          this.emitFile({ type: 'asset', fileName: `bundled/${name}/${file}`, source: await fs.readFile(path.join(dir, name, file)) });
        }
      }
    },
  };
}
