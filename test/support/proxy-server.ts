/**
 * A forward proxy for the tests (node:http on 127.0.0.1): absolute-form requests for http:// URLs
 * are forwarded, CONNECT opens a TCP tunnel; every request is logged with its target and whether
 * it carried Proxy-Authorization. With `auth`, requests without those credentials get 407.
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

export interface ProxyLog {
  method: string;
  target: string;
  proxyAuth: string | null;
}

export interface TestProxy {
  url: string;
  log: ProxyLog[];
  close(): Promise<void>;
}

export async function startProxy(auth?: { user: string; password: string }): Promise<TestProxy> {
  const log: ProxyLog[] = [];
  const expected = auth ? `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}` : null;
  const allowed = (req: IncomingMessage) => expected === null || req.headers['proxy-authorization'] === expected;
  const sockets = new Set<Duplex>();
  const server = createServer((req, res) => {
    log.push({ method: req.method ?? '', target: req.url ?? '', proxyAuth: (req.headers['proxy-authorization'] as string | undefined) ?? null });
    if (!allowed(req)) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic' }).end();
      return;
    }
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: `${target.pathname}${target.search}`, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connect', (req, client) => {
    log.push({ method: 'CONNECT', target: req.url ?? '', proxyAuth: (req.headers['proxy-authorization'] as string | undefined) ?? null });
    if (!allowed(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    sockets.add(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: auth ? `http://${auth.user}:${auth.password}@127.0.0.1:${port}` : `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
