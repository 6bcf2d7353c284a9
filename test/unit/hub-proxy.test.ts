/**
 * The CLI's proxies from the environment (issue 20, app/node/proxy-fetch.ts) against the test Hub
 * and a test forward proxy: `pull` goes through HTTP_PROXY (the Hub and the host it redirects
 * downloads to), not for hosts NO_PROXY names, with the proxy URL's credentials sent to the
 * proxy only; an https:// request goes through a CONNECT tunnel with TLS to the real host inside
 * (the proxy sees the host and port, not the path or the token).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pullCommand } from '../../app/node/pull';
import { fetchViaProxy } from '../../app/node/proxy-fetch';
import { selectiveCopyFiles, startHubServer, type HubServer } from '../support/hub-server';
import { startProxy, type TestProxy } from '../support/proxy-server';

const COMMIT = '2'.repeat(40);
const files = selectiveCopyFiles();
const tlsDir = path.resolve(import.meta.dirname, '../fixtures/tls');
let hub: HubServer;
let proxy: TestProxy;

beforeAll(async () => {
  hub = await startHubServer([{ repo: 'studio/gated', commit: COMMIT, files, modelType: 'mamba', gated: true }]);
  proxy = await startProxy();
});
afterAll(async () => {
  await hub.close();
  await proxy.close();
});

async function pull(env: Record<string, string>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pull-proxy-'));
  const out: string[] = [];
  const err: string[] = [];
  const code = await pullCommand(['studio/gated', '--dir', dir], { env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: hub.token, ...env }, stdout: (t) => out.push(t), stderr: (t) => err.push(t), partMinBytes: 100_000 });
  return { code, dir, stdout: out.join(''), stderr: err.join('') };
}

const hostOf = (url: string) => new URL(url).host;

describe('pull through a proxy from the environment', () => {
  it('sends the Hub and the download host through HTTP_PROXY; the token still reaches the Hub only', async () => {
    proxy.log.length = 0;
    hub.cdnRequests.length = 0;
    const run = await pull({ HTTP_PROXY: proxy.url });
    expect(run.stderr).not.toMatch(/error/);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`through the proxy ${proxy.url}`);
    const folder = run.stdout.trim().split('\n').at(-1)!;
    expect(readFileSync(path.join(folder, 'model.safetensors')).equals(Buffer.from(files['model.safetensors']!))).toBe(true);
    const targets = new Set(proxy.log.map((l) => hostOf(l.target)));
    expect(targets).toEqual(new Set([hostOf(hub.endpoint), hostOf(hub.cdn)]));
    expect(hub.cdnRequests.length).toBeGreaterThan(0);
    for (const r of hub.cdnRequests) expect(r.headers.authorization).toBeUndefined();
    expect(hub.hubRequests.some((r) => r.headers.authorization === `Bearer ${hub.token}`)).toBe(true);
  });

  it('goes direct to hosts NO_PROXY names', async () => {
    proxy.log.length = 0;
    const run = await pull({ HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' });
    expect(run.code).toBe(0);
    expect(proxy.log).toEqual([]);
  });

  it("sends the proxy URL's credentials to the proxy, and fails clearly when it refuses them", async () => {
    const guarded = await startProxy({ user: 'me', password: 's3cret' });
    try {
      const ok = await pull({ HTTP_PROXY: guarded.url });
      expect(ok.code).toBe(0);
      expect(ok.stderr).toContain('through the proxy http://…@127.0.0.1:'); // credentials never printed
      expect(guarded.log.every((l) => l.proxyAuth === `Basic ${Buffer.from('me:s3cret').toString('base64')}`)).toBe(true);
      // The Hub never sees the proxy's credentials.
      for (const r of [...hub.hubRequests, ...hub.cdnRequests]) expect(r.headers['proxy-authorization']).toBeUndefined();
      const refused = await pull({ HTTP_PROXY: guarded.url.replace('s3cret', 'wrong') });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: .*407/m);
      const bad = await pull({ HTTP_PROXY: 'socks5://127.0.0.1:1080' });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('error: the proxy socks5://127.0.0.1:1080 is not an http:// proxy');
    } finally {
      await guarded.close();
    }
  });

  it('tunnels https:// through CONNECT: TLS to the real host, the proxy sees only host and port', async () => {
    const seen: { url: string; authorization?: string }[] = [];
    const server: Server = createServer({ cert: readFileSync(path.join(tlsDir, 'localhost-cert.pem')), key: readFileSync(path.join(tlsDir, 'localhost-key.pem')) }, (req, res) => {
      seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      res.writeHead(200, { 'content-type': 'text/plain', etag: '"abc"' }).end('pong');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      proxy.log.length = 0;
      const response = await fetchViaProxy(`https://localhost:${port}/api/models/x?full=1`, proxy.url, { headers: { Authorization: 'Bearer secret' } }, { ca: readFileSync(path.join(tlsDir, 'localhost-cert.pem'), 'utf8') });
      expect(response.status).toBe(200);
      expect(response.headers.get('ETag')).toBe('"abc"');
      expect(await response.text()).toBe('pong');
      expect(seen).toEqual([{ url: '/api/models/x?full=1', authorization: 'Bearer secret' }]);
      expect(proxy.log).toEqual([{ method: 'CONNECT', target: `localhost:${port}`, proxyAuth: null }]);
      // Without trusting the server's certificate the tunnel's TLS fails: a clear network error.
      await expect(fetchViaProxy(`https://localhost:${port}/`, proxy.url, {})).rejects.toThrow(/localhost:\d+ through the proxy http:\/\/127\.0\.0\.1:\d+: .*certificate/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
