/**
 * IPC for the contract in app/contract.ts: one `ipcMain.handle` per method, each checking that
 * the call comes from the studio's own top-level page and that its arguments have the contract's
 * types before the handler runs. Results travel in an envelope so the preload can re-throw a
 * clean error message.
 */
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import {
  invokeArgs,
  invokeChannel,
  invokeNames,
  type Handlers,
  type InvokeName,
  type StudioErrorPayload,
} from '../app/contract.js';
import { ValidationError } from '../app/validate.js';

export type Envelope<T> = { ok: true; value: T } | { ok: false; error: StudioErrorPayload };

export class StudioError extends Error {
  constructor(
    readonly code: StudioErrorPayload['code'],
    message: string,
  ) {
    super(message);
    this.name = 'StudioError';
  }
}

/** Longest error message sent to the renderer. */
export const MAX_RENDERER_MESSAGE = 2000;

/**
 * An error as the renderer may see it: capped in length, and without the text of files that
 * V8's JSON.parse quotes in its messages (`Unexpected token 'x', "…secret…" is not valid JSON`):
 * a message names the file and what is wrong, never what the file says.
 */
export function messageForRenderer(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  // Greedy to the last "is not valid JSON": text quoted from the file cannot end the match early.
  const redacted = raw
    .replace(/Unexpected token '[\s\S]{1,2}', [\s\S]* is not valid JSON/g, 'Unexpected character (the text is not shown)')
    .replace(/(?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON/g, 'not valid JSON (the text is not shown)')
    .replace(/Unexpected token [\s\S]{1,2} in JSON at/g, 'Unexpected character in JSON at');
  return redacted.length <= MAX_RENDERER_MESSAGE ? redacted : `${redacted.slice(0, MAX_RENDERER_MESSAGE - 1)}…`;
}

/** What a handler knows about its caller. */
export interface CallContext {
  senderId: number;
}

/** Is this event from a frame we trust: the top frame of one of our windows, on our origin? */
export type SenderCheck = (event: IpcMainInvokeEvent) => boolean;

/** `scheme://host` of a URL. (Node's `URL.origin` is "null" for custom schemes such as app:.) */
export function schemeAndHost(url: string): string | null {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

export function trustedOrigin(origin: string): SenderCheck {
  return (event) => {
    const frame = event.senderFrame;
    if (!frame || frame !== event.sender.mainFrame) return false;
    return schemeAndHost(frame.url) === origin;
  };
}

/** Wraps one handler with the sender check, argument validation and the result envelope. */
export function makeInvokeListener<K extends InvokeName>(
  name: K,
  handlers: Handlers<CallContext>,
  isTrusted: SenderCheck,
): (event: IpcMainInvokeEvent, ...rawArgs: unknown[]) => Promise<Envelope<unknown>> {
  return async (event, ...rawArgs) => {
    if (!isTrusted(event)) {
      return { ok: false, error: { code: 'forbidden', message: `${name}: call from an untrusted frame refused` } };
    }
    let args;
    try {
      args = invokeArgs[name](rawArgs, name);
    } catch (error) {
      const message = error instanceof ValidationError ? error.message : `${name}: invalid arguments`;
      return { ok: false, error: { code: 'invalid-arguments', message } };
    }
    try {
      const handler = handlers[name] as (ctx: CallContext, ...a: unknown[]) => unknown;
      const value = await handler({ senderId: event.sender.id }, ...(args as unknown[]));
      return { ok: true, value };
    } catch (error) {
      const code = error instanceof StudioError ? error.code : 'failed';
      return { ok: false, error: { code, message: messageForRenderer(error) } };
    }
  };
}

export function registerHandlers(ipcMain: Pick<IpcMain, 'handle'>, handlers: Handlers<CallContext>, isTrusted: SenderCheck): void {
  for (const name of invokeNames) {
    ipcMain.handle(invokeChannel(name), makeInvokeListener(name, handlers, isTrusted));
  }
}
