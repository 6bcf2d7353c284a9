/**
 * Custom schemes. `app://studio/…` serves the built renderer (a secure, standard origin, which
 * WebGPU needs, with the CSP on every response). `model://<id>/<file>` will serve model files of
 * library entries with Range support (model-files issue); for now it answers 404 for unknown ids
 * and 501 otherwise, so nothing outside the library can ever be read through it.
 */
import { net, protocol } from 'electron';
import { pathToFileURL } from 'node:url';
import { CONTENT_SECURITY_POLICY } from '../app/csp.js';
import { resolveInside } from './paths.js';

export const APP_ORIGIN = 'app://studio';

export function registerSchemes(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
    { scheme: 'model', privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true, corsEnabled: true } },
  ]);
}

export function handleAppProtocol(rendererDir: string): void {
  protocol.handle('app', async (request) => {
    const url = new URL(request.url);
    if (url.host !== 'studio') return new Response('Not found', { status: 404 });
    const file = resolveInside(rendererDir, url.pathname === '/' ? '/index.html' : url.pathname);
    if (!file) return new Response('Forbidden', { status: 403 });
    const response = await net.fetch(pathToFileURL(file).toString());
    const headers = new Headers(response.headers);
    headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    headers.set('X-Content-Type-Options', 'nosniff');
    if (file.endsWith('.js')) headers.set('Content-Type', 'text/javascript');
    return new Response(response.body, { status: response.status, headers });
  });
}

export function handleModelProtocol(knownIds: () => Promise<Set<string>>): void {
  protocol.handle('model', async (request) => {
    const id = decodeURIComponent(new URL(request.url).host);
    if (!(await knownIds()).has(id)) return new Response(`model://: unknown model id ${id}`, { status: 404 });
    return new Response('model://: serving model files is not implemented yet', { status: 501 });
  });
}
