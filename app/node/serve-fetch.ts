/** Serves a Fetch-API handler (Request → Response) on a Node HTTP request/response pair. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

export async function serveFetch(
  handler: (request: Request) => Promise<Response>,
  url: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(key, value);
    else if (Array.isArray(value)) headers.set(key, value.join(', '));
  }
  let response: Response;
  try {
    response = await handler(new Request(url, { method: req.method ?? 'GET', headers }));
  } catch (error) {
    res.statusCode = 500;
    res.end(`internal error: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  res.statusCode = response.status;
  response.headers.forEach((value, key) => res.setHeader(key, value));
  if (!response.body) {
    res.end();
    return;
  }
  const body = Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
  body.on('error', () => res.destroy());
  res.on('close', () => body.destroy());
  body.pipe(res);
}
