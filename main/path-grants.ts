/**
 * Path grants: the renderer never names a path of the disk to open. It passes grants — random
 * single-use tokens, bound to the window they were given to and short-lived — that main handed
 * out for paths it got itself:
 *  - from the command line, a second instance or the OS's "open with" (main/main.ts grants them
 *    and sends the grants with the `openPaths` event);
 *  - from a drop (or a file input): the page hands the File object to the preload, which, in
 *    its isolated world, asks Electron for the file's path (`webUtils.getPathForFile`: empty for
 *    a File made by script, so only files the user actually dropped or picked have one) and
 *    sends that path on a channel of its own that the page cannot reach; main answers with a grant.
 * The Open dialog needs none: main opens what its own dialog returned.
 *
 * A script running in the page (the threat of a compromised renderer) can thus open only what
 * the user dropped, picked or handed over, and learns nothing of other paths: not whether they
 * exist, not a word of their contents.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { IpcMainInvokeEvent } from 'electron';
import type { ModelEntry } from '../app/contract.js';
import { v } from '../app/validate.js';
import { messageForRenderer, StudioError, type CallContext, type Envelope, type SenderCheck } from './ipc.js';

export type GrantSource = 'os' | 'drop';

interface Grant {
  path: string;
  owner: number;
  source: GrantSource;
  expires: number;
}

export interface PathGrantsOptions {
  /** How long a grant stays valid (default 10 minutes). */
  ttlMs?: number;
  /** At most this many grants outstanding; the oldest go first (default 256). */
  max?: number;
  now?: () => number;
}

export class PathGrants {
  private readonly grants = new Map<string, Grant>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;

  constructor(options: PathGrantsOptions = {}) {
    this.ttlMs = options.ttlMs ?? 10 * 60_000;
    this.max = options.max ?? 256;
    this.now = options.now ?? Date.now;
  }

  /** A new grant for `target` (made absolute), usable once by the web contents `owner`. */
  grant(target: string, owner: number, source: GrantSource): string {
    const token = randomBytes(32).toString('hex');
    this.grants.set(token, { path: path.resolve(target), owner, source, expires: this.now() + this.ttlMs });
    while (this.grants.size > this.max) this.grants.delete(this.grants.keys().next().value as string);
    return token;
  }

  /** The granted path, once: a grant is used up by any attempt, and refused when expired or presented by another owner. */
  take(token: string, owner: number): { path: string; source: GrantSource } | undefined {
    const grant = this.grants.get(token);
    if (!grant) return undefined;
    this.grants.delete(token);
    if (grant.owner !== owner || grant.expires < this.now()) return undefined;
    return { path: grant.path, source: grant.source };
  }

  get size(): number {
    return this.grants.size;
  }
}

/**
 * The `openModelPaths` handler: every grant is checked before anything is opened (an unknown one
 * refuses the call, naming no path); then each granted path is opened, and failures are reported
 * together after the others were opened.
 */
export function openGrantedPaths(
  grants: PathGrants,
  open: (target: string) => Promise<ModelEntry>,
): (ctx: CallContext, tokens: string[]) => Promise<ModelEntry[]> {
  return async (ctx, tokens) => {
    const taken = tokens.map((t) => grants.take(t, ctx.senderId));
    const refused = taken.filter((t) => t === undefined).length;
    if (refused) {
      throw new StudioError(
        'forbidden',
        `openModelPaths: ${refused} of ${tokens.length} grant(s) unknown, expired or already used; models are opened from the Open dialog, by dropping them on the window, or from the command line`,
      );
    }
    const entries: ModelEntry[] = [];
    const failures: string[] = [];
    for (const grant of taken as { path: string }[]) {
      try {
        entries.push(await open(grant.path));
      } catch (error) {
        failures.push(messageForRenderer(error));
      }
    }
    if (failures.length) throw new StudioError('failed', failures.join('\n'));
    return entries;
  };
}

const droppedPath = v.string({ nonEmpty: true, maxLength: 4096 });

/**
 * The listener of the preload's drop channel: a path that `webUtils.getPathForFile` gave for a
 * dropped or picked File becomes a grant for the window that sent it.
 */
export function makeDropGrantListener(
  grants: PathGrants,
  isTrusted: SenderCheck,
): (event: IpcMainInvokeEvent, ...rawArgs: unknown[]) => Envelope<string> {
  return (event, ...rawArgs) => {
    if (!isTrusted(event)) return { ok: false, error: { code: 'forbidden', message: 'drop: call from an untrusted frame refused' } };
    let dropped: string;
    try {
      if (rawArgs.length !== 1) throw new Error('expected 1 argument');
      dropped = droppedPath(rawArgs[0], 'drop[0]');
      if (!path.isAbsolute(dropped) || dropped.includes('\0')) throw new Error('expected an absolute path');
    } catch (error) {
      return { ok: false, error: { code: 'invalid-arguments', message: `drop: ${error instanceof Error ? error.message : String(error)}` } };
    }
    return { ok: true, value: grants.grant(dropped, event.sender.id, 'drop') };
  };
}
