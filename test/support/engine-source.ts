/**
 * A model folder on disk as the engine's 'files' load source (what a browser's file picker hands
 * the worker): the named files read into File objects. The folder's name is the source's folder
 * unless `folder` is given.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { EngineRequest, EngineRequestKind, EngineRequests, EngineResponse } from '../../app/engine/protocol';

export function filesSource(dir: string, names: readonly string[] = ['config.json', 'model.safetensors'], folder = path.basename(dir)) {
  return {
    kind: 'files' as const,
    folder,
    files: names.map((name) => new File([readFileSync(path.join(dir, name))], name)),
  };
}

/** `engine`'s requests as calls: each sends one request (ids counting up) and returns its result, or throws its error. */
export function engineCaller(engine: { handle(request: EngineRequest): Promise<EngineResponse> }) {
  let id = 1;
  return async <K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> => {
    const reply = await engine.handle({ id: id++, kind, params } as EngineRequest);
    if (!reply.ok) throw new Error(reply.error);
    return reply.result as EngineRequests[K]['result'];
  };
}
