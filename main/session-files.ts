/**
 * Session and trace files handed over by the OS (a double-clicked `.mamba-session`, a trace
 * `.safetensors` on the command line, "open with"): main tells them from models by their header
 * (`classifyOpenedPath`, which reads only the safetensors header), sends the renderer grants for
 * them (`openSessionFiles`, as models get `openPaths`), and reads a granted one for the renderer
 * (`readGrantedSessionFile`), which checks and shows it (renderer/src/session/). A grant is
 * used once, by the window it was given to; what it names is read only when it still is a
 * session or trace file no larger than MAX_SESSION_FILE_BYTES, so a grant cannot read anything
 * else. Pure of Electron: unit-tested in Node (test/unit/session-files.test.ts).
 */
import path from 'node:path';
import { TRACE_FORMAT } from '../app/analysis/export.js';
import { SESSION_FORMAT } from '../app/analysis/trace-file.js';
import { readSafetensorsHeader } from '../app/formats/safetensors.js';
import { openFileSource } from '../app/node/file-source.js';
import { StudioError, type CallContext } from './ipc.js';
import type { PathGrants } from './path-grants.js';

export const SESSION_EXTENSION = '.mamba-session';
/** Largest session or trace file read for the renderer (it is copied over IPC). */
export const MAX_SESSION_FILE_BYTES = 1024 ** 3;

/** A session or trace file by its header, or a model (anything else: the model library decides). */
export async function classifyOpenedPath(target: string): Promise<'session' | 'trace' | 'model'> {
  const lower = target.toLowerCase();
  if (!lower.endsWith(SESSION_EXTENSION) && !lower.endsWith('.safetensors')) return 'model';
  let source;
  try {
    source = await openFileSource(target);
  } catch {
    return lower.endsWith(SESSION_EXTENSION) ? 'session' : 'model'; // a folder, missing…: the opener says what is wrong
  }
  try {
    const format = (await readSafetensorsHeader(source)).metadata.format;
    return format === SESSION_FORMAT ? 'session' : format === TRACE_FORMAT ? 'trace' : lower.endsWith(SESSION_EXTENSION) ? 'session' : 'model';
  } catch {
    return lower.endsWith(SESSION_EXTENSION) ? 'session' : 'model';
  } finally {
    await source.close();
  }
}

/** Splits the paths the OS handed over into models and sessions/traces. */
export async function splitOpenedPaths(paths: readonly string[]): Promise<{ models: string[]; sessions: string[] }> {
  const models: string[] = [];
  const sessions: string[] = [];
  for (const p of paths) ((await classifyOpenedPath(p)) === 'model' ? models : sessions).push(p);
  return { models, sessions };
}

/** The `readSessionFile` handler: the granted file's name and bytes, if it is a session or trace file. */
export function readGrantedSessionFile(grants: PathGrants): (ctx: CallContext, token: string) => Promise<{ name: string; bytes: Uint8Array }> {
  return async (ctx, token) => {
    const granted = grants.take(token, ctx.senderId);
    if (!granted) throw new StudioError('forbidden', 'readSessionFile: grant unknown, expired or already used; open sessions from the File menu, by dropping them, or from the command line');
    const name = path.basename(granted.path);
    const kind = await classifyOpenedPath(granted.path);
    if (kind === 'model') throw new StudioError('failed', `${name}: not a session or an exported trace`);
    const source = await openFileSource(granted.path).catch((error: unknown) => {
      throw new StudioError('failed', error instanceof Error ? error.message.replace(granted.path, name) : String(error));
    });
    try {
      if (source.size > MAX_SESSION_FILE_BYTES) throw new StudioError('failed', `${name}: ${(source.size / 1024 ** 3).toFixed(1)} GiB is larger than any session this app writes (limit ${MAX_SESSION_FILE_BYTES / 1024 ** 3} GiB)`);
      return { name, bytes: await source.read(0, source.size) };
    } finally {
      await source.close();
    }
  };
}
