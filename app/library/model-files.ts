/**
 * Which files of a folder a model consists of: its weights (.safetensors, .gguf, PyTorch .bin), config (transformers' config.json, or
 * mistral's params.json beside consolidated.safetensors), shard index, tokenizer, chat
 * template files (tokenizer_config.json, chat_template.jinja/.json), generation_config.json
 * (optional: its end-of-sequence ids) and studio.json — never the other files that happen to lie
 * beside them (notes, other checkpoints).
 * The library records these names and model:// serves only them; the engine, re-inspecting the
 * model from that list, takes the same decisions inspection took on the folder.
 */
import { UNREAD_TOKENIZER_FILES } from '../arch/inspect.js';
import { MISTRAL_PARAMS, MISTRAL_WEIGHTS } from '../arch/mistral-params.js';
import type { ModelInspection } from '../model/inspection.js';

export const SHARD_INDEX = 'model.safetensors.index.json';
/** A sharded PyTorch checkpoint's index (app/arch/inspect.ts PYTORCH_INDEX). */
export const PYTORCH_SHARD_INDEX = 'pytorch_model.bin.index.json';
/** Where an instruct model's chat template may be (app/tokenizer/chat-template.ts chatTemplateFromFiles). */
export const CHAT_TEMPLATE_FILES: readonly string[] = ['tokenizer_config.json', 'chat_template.jinja', 'chat_template.json'];
/**
 * Files beside the weights that the studio reads; and the tokenizer files it does not read but
 * names in a warning when a folder has no tokenizer.json (UNREAD_TOKENIZER_FILES: part of the
 * model, never opened).
 */
export const MODEL_SIDE_FILES: readonly string[] = [
  'config.json', MISTRAL_PARAMS, 'tokenizer.json', ...CHAT_TEMPLATE_FILES, 'studio.json', SHARD_INDEX, PYTORCH_SHARD_INDEX, 'generation_config.json', ...UNREAD_TOKENIZER_FILES,
];

/** Could this file belong to a model (the names inspection looks at)? */
export function isModelFileName(name: string): boolean {
  return MODEL_SIDE_FILES.includes(name) || name.endsWith('.safetensors') || /\.gguf$/i.test(name) || /\.bin$/i.test(name);
}

/**
 * The files the model consists of, given what inspection found and the names present in its
 * folder: the weight files, and for safetensors the config and the shard index (when present) —
 * for mistral's form (consolidated.safetensors read) params.json instead, so that re-inspecting
 * the list takes the same form; tokenizer.json (else the first unread tokenizer file, whose
 * warning then stays the same), the chat template files, generation_config.json and studio.json
 * when present. Sorted.
 */
export function modelOwnFiles(inspection: Pick<ModelInspection, 'format' | 'weightFiles'>, present: readonly string[]): string[] {
  const has = new Set(present);
  const own = new Set(inspection.weightFiles);
  if (inspection.format === 'safetensors' || inspection.format === 'pytorch') {
    const mistral = inspection.format === 'safetensors' && inspection.weightFiles.length === 1 && inspection.weightFiles[0] === MISTRAL_WEIGHTS && has.has(MISTRAL_PARAMS);
    own.add(mistral ? MISTRAL_PARAMS : 'config.json');
    const index = inspection.format === 'safetensors' ? SHARD_INDEX : PYTORCH_SHARD_INDEX;
    if (!mistral && has.has(index)) own.add(index);
    const unread = UNREAD_TOKENIZER_FILES.find((n) => has.has(n));
    if (!has.has('tokenizer.json') && unread) own.add(unread);
  }
  for (const side of ['tokenizer.json', ...CHAT_TEMPLATE_FILES, 'studio.json', 'generation_config.json']) if (has.has(side)) own.add(side);
  return [...own].sort();
}
