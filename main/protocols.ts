/**
 * Custom schemes. `app://studio/…` serves the built renderer (a secure, standard origin, which
 * WebGPU needs, with the CSP on every response). `model://<id>/<file>` serves the files of library
 * entries with Range support (main/model-protocol.ts), and nothing else.
 */
import { net, protocol } from 'electron';
import { pathToFileURL } from 'node:url';
import { CONTENT_SECURITY_POLICY } from '../app/csp.js';
import { createModelHandler, type ResolveModel } from './model-protocol.js';
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

export function handleModelProtocol(resolve: ResolveModel): void {
  protocol.handle('model', createModelHandler(resolve));
}
