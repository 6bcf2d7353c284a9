/**
 * The memory plan of a choice before it is downloaded: the model's headers read over the Hub with
 * Range requests (config, safetensors / GGUF / PyTorch headers: app/arch/inspect.ts, as for a
 * folder on disk), then app/model/memory-plan.ts's planMemory for this GPU. A few requests of at
 * most READ_AHEAD bytes each; the weights themselves are never read.
 */
import { inspectModel } from '../arch/inspect.js';
import { ModelFileError } from '../formats/errors.js';
import { readAllText, type ModelFiles } from '../formats/model-files.js';
import { checkRange, type ByteSource } from '../formats/source.js';
import { planMemory, type MemoryPlan, type PlanOptions } from '../model/memory-plan.js';
import type { HubChoice } from './choices.js';
import type { HubClient, HubTreeEntry } from './client.js';
import type { HubSignal } from './http.js';

/** Bytes fetched at least per request: a header's small reads are served from one block. */
export const READ_AHEAD = 256 * 1024;

async function readBody(response: { body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }> } } | null }, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  while (reader && total < max) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value) {
      chunks.push(value);
      total += value.length;
    }
  }
  const out = new Uint8Array(Math.min(total, max));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, Math.min(c.length, out.length - at));
    out.set(part, at);
    at += part.length;
    if (at >= out.length) break;
  }
  return out;
}

/** One file of a repo as a ByteSource over ranged requests, with one read-ahead block. */
function hubSource(client: HubClient, repo: string, commit: string, file: HubTreeEntry, signal?: HubSignal): ByteSource {
  let block: { offset: number; bytes: Uint8Array } | null = null;
  const name = `${repo}/${file.path}`;
  const source: ByteSource = {
    name,
    size: file.size,
    async read(offset, length) {
      checkRange(source, offset, length, 'read');
      if (length === 0) return new Uint8Array(0);
      if (block && offset >= block.offset && offset + length <= block.offset + block.bytes.length) {
        return block.bytes.subarray(offset - block.offset, offset - block.offset + length);
      }
      const end = Math.min(file.size, offset + Math.max(length, READ_AHEAD)) - 1;
      const { response } = await client.request(client.resolveUrl(repo, commit, file.path), {
        range: { start: offset, end },
        what: `${file.path} of ${repo}`,
        repo,
        ...(signal ? { signal } : {}),
      });
      const whole = response.status === 200 && offset === 0;
      if (response.status !== 206 && !whole) throw new ModelFileError(name, `range request ${offset}-${end} answered HTTP ${response.status}`);
      const bytes = await readBody(response, end - offset + 1);
      if (bytes.length < length) throw new ModelFileError(name, `range request ${offset}+${length} returned ${bytes.length} bytes`);
      block = { offset, bytes };
      return bytes.subarray(0, length);
    },
  };
  return source;
}

/** A choice's files as the ModelFiles inspection reads (by their names without folders). */
export function hubModelFiles(client: HubClient, repo: string, commit: string, files: readonly HubTreeEntry[], signal?: HubSignal): ModelFiles {
  const byName = new Map(files.map((f) => [f.path.split('/').pop() ?? f.path, f]));
  const open = async (name: string) => {
    const file = byName.get(name);
    if (!file) throw new ModelFileError(`${repo}/${name}`, 'is not a file of this choice');
    return hubSource(client, repo, commit, file, signal);
  };
  return {
    name: repo,
    list: async () => [...byName.keys()],
    pathOf: (name) => `${repo}/${byName.get(name)?.path ?? name}`,
    open,
    readText: async (name) => readAllText(await open(name)),
  };
}

/** The memory plan of a choice for this adapter (none: memory unknown), without a trace, as loading checks it. */
export async function planChoice(
  client: HubClient,
  view: { repo: string; commit: string },
  choice: HubChoice,
  adapter: PlanOptions['adapter'] = null,
  signal?: HubSignal,
): Promise<MemoryPlan> {
  const inspection = await inspectModel(hubModelFiles(client, view.repo, view.commit, choice.files, signal));
  return planMemory(inspection, { adapter, model: `${view.repo} (${choice.label})` });
}
