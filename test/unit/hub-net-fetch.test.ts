/**
 * main/net-fetch.ts: the Hub client's fetch on Electron's net.request, with a stand-in request
 * (Electron's ClientRequest emits 'redirect' in manual mode and 'response' with a Readable). A
 * redirect comes back as the 3xx with its Location (not followed), headers as set, the body as a
 * stream, no cookies; aborting ends a pending body read with an error.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { netFetch, type NetRequest } from '../../main/net-fetch';

class FakeRequest extends EventEmitter {
  headers: Record<string, string> = {};
  aborted = false;
  ended = false;
  setHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  abort() {
    this.aborted = true;
  }
  end() {
    this.ended = true;
  }
}

function fake(then: (req: FakeRequest) => void) {
  const made: { options: Record<string, unknown>; req: FakeRequest }[] = [];
  const request = ((options: Record<string, unknown>) => {
    const req = new FakeRequest();
    made.push({ options, req });
    queueMicrotask(() => then(req));
    return req;
  }) as unknown as NetRequest;
  return { made, fetch: netFetch(request) };
}

describe('net.request as the Hub fetch', () => {
  it('answers a redirect as the 3xx with its Location, without following it', async () => {
    const { made, fetch } = fake((req) => req.emit('redirect', 302, 'GET', 'https://cdn.example/blob', { 'x-linked-size': ['12'] }));
    const response = await fetch('https://huggingface.co/o/n/resolve/main/model.safetensors', { method: 'HEAD', headers: { Authorization: 'Bearer t' } });
    expect(response.status).toBe(302);
    expect(response.headers.get('Location')).toBe('https://cdn.example/blob');
    expect(response.headers.get('X-Linked-Size')).toBe('12');
    expect(made[0]?.options).toMatchObject({ method: 'HEAD', redirect: 'manual', useSessionCookies: false });
    expect(made[0]?.req.headers).toEqual({ Authorization: 'Bearer t' });
    expect(made[0]?.req.aborted).toBe(true);
  });

  it('streams the body of a response', async () => {
    const { fetch } = fake((req) => {
      const res = Object.assign(new PassThrough(), { statusCode: 206, headers: { 'content-range': 'bytes 0-2/3' } });
      req.emit('response', res);
      res.end(Buffer.from('abc'));
    });
    const response = await fetch('https://cdn.example/blob', { headers: { Range: 'bytes=0-2' } });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe('bytes 0-2/3');
    expect(await response.text()).toBe('abc');
  });

  it('abort ends a pending read with an error and aborts the request', async () => {
    let res: PassThrough | null = null;
    const { made, fetch } = fake((req) => {
      res = Object.assign(new PassThrough(), { statusCode: 200, headers: {} });
      req.emit('response', res);
      res.write(Buffer.from('partial'));
    });
    const controller = new AbortController();
    const response = await fetch('https://cdn.example/blob', { signal: controller.signal as never });
    const reader = response.body!.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array(Buffer.from('partial')));
    const pending = reader.read();
    controller.abort('pause');
    await expect(pending).rejects.toThrow();
    expect(made[0]?.req.aborted).toBe(true);
  });

  it('a request error rejects', async () => {
    const { fetch } = fake((req) => req.emit('error', new Error('net::ERR_PROXY_CONNECTION_FAILED')));
    await expect(fetch('https://huggingface.co/api/models/o/n', {})).rejects.toThrow('net::ERR_PROXY_CONNECTION_FAILED');
  });
});
