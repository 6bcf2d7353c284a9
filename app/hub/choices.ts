/**
 * Which files of a Hub repo the studio can open, as choices the user picks one of: the
 * transformers checkpoint (config + safetensors shards + index), mistral's consolidated form, a
 * PyTorch .bin checkpoint, and each GGUF quant on its own (split GGUFs as one). The side files
 * (tokenizer, chat template, generation config) are the names app/library/model-files.ts lists,
 * so what lands on disk is what the library then records of the model.
 */
import { MISTRAL_PARAMS, MISTRAL_WEIGHTS } from '../arch/mistral-params.js';
import { MODEL_SIDE_FILES, PYTORCH_SHARD_INDEX, SHARD_INDEX } from '../library/model-files.js';
import type { HubTreeEntry } from './client.js';

export type HubChoiceKind = 'safetensors' | 'mistral' | 'pytorch' | 'gguf';

export interface HubChoice {
  /** Stable within a repo's tree: the kind, and for GGUF the (first) file. */
  id: string;
  kind: HubChoiceKind;
  /** For people: "safetensors (2 shards)", "GGUF Q4_K_M". */
  label: string;
  files: HubTreeEntry[];
  /** All the files' bytes. */
  bytes: number;
  /** The weights' bytes alone (what the GPU holds, before any conversion). */
  weightBytes: number;
}

/** Files of the repo's top folder that go with a config-based checkpoint (never the weights of another form). */
function sideFiles(entries: readonly HubTreeEntry[], exclude: readonly string[]): HubTreeEntry[] {
  return entries.filter((e) => MODEL_SIDE_FILES.includes(e.path) && !exclude.includes(e.path));
}

/** The quant type a GGUF file name carries ("Q4_K_M", "F16", "BF16", "IQ3_XXS"…), if any. */
export function ggufQuant(file: string): string | null {
  const base = file.split('/').pop() ?? file;
  const m = /(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32)(?=[-_.])/i.exec(base.replace(/\.gguf$/i, '.'));
  return m?.[1]?.toUpperCase() ?? null;
}

const SPLIT_GGUF = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/i;

function choice(id: string, kind: HubChoiceKind, label: string, weights: HubTreeEntry[], side: HubTreeEntry[]): HubChoice {
  const files = [...side, ...weights].sort((a, b) => a.path.localeCompare(b.path));
  const sum = (list: HubTreeEntry[]) => list.reduce((s, f) => s + f.size, 0);
  return { id, kind, label, files, bytes: sum(files), weightBytes: sum(weights) };
}

/** The choices a repo's file tree offers, largest-format first; GGUF quants by size. */
export function studioChoices(entries: readonly HubTreeEntry[]): HubChoice[] {
  const top = entries.filter((e) => !e.path.includes('/'));
  const has = (name: string) => top.some((e) => e.path === name);
  const out: HubChoice[] = [];
  const shards = top.filter((e) => e.path.endsWith('.safetensors') && e.path !== MISTRAL_WEIGHTS);
  if (shards.length && has('config.json')) {
    const side = sideFiles(top, [MISTRAL_PARAMS, PYTORCH_SHARD_INDEX]);
    out.push(choice('safetensors', 'safetensors', shards.length === 1 ? 'safetensors' : `safetensors (${shards.length} shards)`, shards, side));
  }
  const consolidated = top.find((e) => e.path === MISTRAL_WEIGHTS);
  if (consolidated && has(MISTRAL_PARAMS)) {
    const side = sideFiles(top, ['config.json', SHARD_INDEX, PYTORCH_SHARD_INDEX]);
    out.push(choice('mistral', 'mistral', 'consolidated.safetensors (mistral form)', [consolidated], side));
  } else if (consolidated && has('config.json') && !shards.length) {
    out.push(choice('safetensors', 'safetensors', 'safetensors', [consolidated], sideFiles(top, [MISTRAL_PARAMS, PYTORCH_SHARD_INDEX])));
  }
  const bins = top.filter((e) => /^pytorch_model(-\d+-of-\d+)?\.bin$/.test(e.path));
  if (bins.length && has('config.json')) {
    const side = sideFiles(top, [MISTRAL_PARAMS, SHARD_INDEX]);
    out.push(choice('pytorch', 'pytorch', bins.length === 1 ? 'PyTorch .bin' : `PyTorch .bin (${bins.length} shards)`, bins, side));
  }
  const ggufs = entries.filter((e) => /\.gguf$/i.test(e.path));
  const splits = new Map<string, HubTreeEntry[]>();
  const ggufChoices: HubChoice[] = [];
  for (const g of ggufs) {
    const split = SPLIT_GGUF.exec(g.path);
    if (split) {
      const key = split[1] as string;
      splits.set(key, [...(splits.get(key) ?? []), g]);
      continue;
    }
    const quant = ggufQuant(g.path);
    ggufChoices.push(choice(`gguf:${g.path}`, 'gguf', quant ? `GGUF ${quant} (${g.path})` : `GGUF ${g.path}`, [g], []));
  }
  for (const [key, parts] of splits) {
    const sorted = [...parts].sort((a, b) => a.path.localeCompare(b.path));
    const total = Number(SPLIT_GGUF.exec((sorted[0] as HubTreeEntry).path)?.[3]);
    if (sorted.length !== total) continue; // an incomplete split is not a model
    const quant = ggufQuant(`${key}.gguf`);
    ggufChoices.push(choice(`gguf:${(sorted[0] as HubTreeEntry).path}`, 'gguf', `GGUF ${quant ?? key} (${total} parts)`, sorted, []));
  }
  ggufChoices.sort((a, b) => a.bytes - b.bytes);
  return [...out, ...ggufChoices];
}

/** The choice holding `file` (a blob/resolve URL's file): its GGUF quant, else the first config-based choice with it; or null. */
export function choiceForFile(choices: readonly HubChoice[], file: string): HubChoice | null {
  const holds = (c: HubChoice) => c.files.some((f) => f.path === file);
  return choices.find((c) => c.kind === 'gguf' && holds(c)) ?? choices.find(holds) ?? null;
}
