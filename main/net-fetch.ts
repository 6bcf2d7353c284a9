/**
 * The Hub client's fetch (app/hub/http.ts HubFetch) on Electron's `net.request`: Chromium's
 * network stack, so the system's proxy settings (and, on Linux, HTTPS_PROXY / NO_PROXY) apply. A
 * redirect is answered as the 3xx itself with its Location, never followed here, so app/hub decides
 * per hop whether the token goes along (only to the endpoint's host). No cookies are sent.
 */
import type { ClientRequest, ClientRequestConstructorOptions, IncomingMessage } from 'electron';
import { Readable } from 'node:stream';
import type { HubFetch, HubHeaders, HubResponse } from '../app/hub/http.js';

export type NetRequest = (options: ClientRequestConstructorOptions) => ClientRequest;

function headersOf(raw: Record<string, string | string[]>): HubHeaders {
  const map = new Map<string, string>();
  for (const [k, value] of Object.entries(raw)) map.set(k.toLowerCase(), Array.isArray(value) ? value.join(', ') : value);
  return { get: (name) => map.get(name.toLowerCase()) ?? null };
}

function response(status: number, headers: HubHeaders, body: ReadableStream<Uint8Array> | null): HubResponse {
  return {
    status,
    headers,
    body: body as HubResponse['body'],
    async text() {
      if (!body) return '';
      const chunks: Uint8Array[] = [];
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
      }
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

export function netFetch(request: NetRequest): HubFetch {
  return (url, init) =>
    new Promise<HubResponse>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const req = request({ url, method: init.method ?? 'GET', redirect: 'manual', useSessionCookies: false, cache: 'no-store' } as ClientRequestConstructorOptions);
      for (const [name, value] of Object.entries(init.headers ?? {})) req.setHeader(name, value);
      let settled = false;
      let body: Readable | null = null;
      const onAbort = () => {
        req.abort();
        body?.destroy(new Error('aborted')); // a pending read ends with an error, not never
        if (!settled) reject(signal?.reason ?? new Error('aborted'));
        settled = true;
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('redirect', (statusCode, _method, redirectUrl, responseHeaders) => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        req.abort();
        const headers = headersOf({ ...responseHeaders, location: redirectUrl });
        resolve(response(statusCode, headers, null));
      });
      req.on('response', (res: IncomingMessage) => {
        settled = true;
        body = res as unknown as Readable;
        const stream = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
        res.on('end', () => signal?.removeEventListener('abort', onAbort));
        resolve(response(res.statusCode, headersOf(res.headers), init.method === 'HEAD' ? null : stream));
      });
      req.on('error', (error) => {
        signal?.removeEventListener('abort', onAbort);
        if (!settled) reject(error);
        settled = true;
      });
      req.end();
    });
}
