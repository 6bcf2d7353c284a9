/**
 * The CLI's Hub fetch with the environment's proxies (issue 20: "proxies from the environment"):
 * Node 20's fetch ignores HTTP_PROXY / HTTPS_PROXY, so a request that a proxy variable applies to
 * (`proxyFor`: NO_PROXY honoured, per request — the Hub and the host its downloads redirect to may
 * differ) goes through that proxy here, with node:http: an http:// URL as an absolute-form request
 * to the proxy, an https:// one through a CONNECT tunnel with TLS to the real host inside it (the
 * proxy sees only the host name; the token and the bytes stay encrypted). Credentials in the
 * proxy URL (http://user:pass@host:port) go as Proxy-Authorization to the proxy only. Requests no
 * proxy applies to use the global fetch. Only http:// proxies are supported (the common case);
 * another scheme is a clear error.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { HubError } from '../hub/errors.js';
import type { HubFetch, HubRequestInit, HubResponse } from '../hub/http.js';

/** Does a proxy variable apply to this URL (NO_PROXY honoured)? Returns the proxy, or null. */
export function proxyFor(url: string, env: Record<string, string | undefined>): string | null {
  const u = new URL(url);
  const proxy = u.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!proxy) return null;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const host = u.hostname.toLowerCase();
  for (const rule of noProxy) {
    if (rule === '*') return null;
    const bare = rule.replace(/^\*?\./, '').replace(/:\d+$/, '');
    if (host === bare || host.endsWith(`.${bare}`)) return null;
  }
  return proxy;
}

/** The proxy URL with its credentials hidden, for messages. */
export const shownProxy = (proxy: string) => proxy.replace(/\/\/[^@/]*@/, '//…@');

function responseOf(res: http.IncomingMessage, method: string): HubResponse {
  const headers = {
    get(name: string): string | null {
      const value = res.headers[name.toLowerCase()];
      return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
    },
  };
  const empty = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
  if (empty) res.resume();
  const stream = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  return {
    status: res.statusCode ?? 0,
    headers,
    body: stream,
    async text() {
      if (!stream) return '';
      return new Response(stream).text();
    },
  };
}

/** The proxy's URL, or a HubError when it is not an http:// proxy URL. */
export function checkProxy(proxyUrl: string): URL {
  let proxy: URL;
  try {
    proxy = new URL(proxyUrl);
  } catch {
    throw new HubError('bad-input', `the proxy ${shownProxy(proxyUrl)} is not a URL`);
  }
  if (proxy.protocol !== 'http:') throw new HubError('bad-input', `the proxy ${shownProxy(proxyUrl)} is not an http:// proxy (the only kind pull supports)`);
  return proxy;
}

/** One request through an http:// proxy (see the file's comment). */
export function fetchViaProxy(url: string, proxyUrl: string, init: HubRequestInit, tlsOptions: { ca?: string } = {}): Promise<HubResponse> {
  const target = new URL(url);
  let proxy: URL;
  try {
    proxy = checkProxy(proxyUrl);
  } catch (error) {
    return Promise.reject(error);
  }
  const method = init.method ?? 'GET';
  const signal = init.signal as AbortSignal | undefined;
  const proxyAuth = proxy.username ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` } : {};
  const proxyPort = Number(proxy.port || 80);
  const targetPort = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const headers = { ...init.headers, host: target.host };
  const failed = (error: unknown) => (error instanceof HubError || (error as { name?: string }).name === 'AbortError' ? error : new HubError('network', `${target.host} through the proxy ${shownProxy(proxyUrl)}: ${(error as Error).message}`));
  return new Promise<HubResponse>((resolve, reject) => {
    const fail = (error: unknown) => reject(failed(error));
    if (target.protocol === 'http:') {
      const req = http.request({ host: proxy.hostname, port: proxyPort, method, path: target.href, headers: { ...headers, ...proxyAuth }, ...(signal ? { signal } : {}) }, (res) => resolve(responseOf(res, method)));
      req.on('error', fail);
      req.end();
      return;
    }
    const connect = http.request({ host: proxy.hostname, port: proxyPort, method: 'CONNECT', path: `${target.hostname}:${targetPort}`, headers: { host: `${target.hostname}:${targetPort}`, ...proxyAuth }, ...(signal ? { signal } : {}) });
    connect.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        fail(new HubError('network', `the proxy ${shownProxy(proxyUrl)} refused a tunnel to ${target.host} (HTTP ${res.statusCode})`));
        return;
      }
      const req = https.request(
        { host: target.hostname, port: targetPort, method, path: `${target.pathname}${target.search}`, headers, servername: target.hostname, createConnection: () => tls.connect({ socket, servername: target.hostname, ...tlsOptions }), ...(signal ? { signal } : {}) },
        (r) => resolve(responseOf(r, method)),
      );
      req.on('error', fail);
      req.end();
    });
    connect.on('error', fail);
    connect.end();
  });
}

/** A Hub fetch that sends each request through the proxy the environment names for it, if any. */
export function envProxyFetch(env: Record<string, string | undefined>, direct: HubFetch): HubFetch {
  return (url, init) => {
    const proxy = proxyFor(url, env);
    return proxy ? fetchViaProxy(url, proxy, init) : direct(url, init);
  };
}
