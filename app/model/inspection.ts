/**
 * What opening a model's files found out, without reading any weights (app/arch/inspect.ts makes
 * it): the canonical config, where every tensor is, the tokenizer. The loader and the model read
 * this alone.
 */
import type { TensorLocation } from '../formats/tensor-location.js';
import type { ChatTemplate } from '../tokenizer/chat-template.js';
import { withContext, type MambaConfig } from './config.js';

export type { TensorLocation };

/** The container a model's weights come in. */
/** 'pytorch': torch.save's zip format (pytorch_model.bin, sharded or not), read by app/formats/pytorch.ts. */
export type ModelFormat = 'safetensors' | 'gguf' | 'pytorch';

export interface ModelInspection {
  /** The architecture's registry name (app/arch/registry.ts). */
  architecture: string;
  format: ModelFormat;
  config: MambaConfig;
  parameters: number;
  /** Name in the file → where it is and what it holds. */
  tensors: Map<string, TensorLocation>;
  tiedHead: boolean;
  /** Name of the embedding tensor (naming scheme). */
  embeddingName: string;
  weightFiles: string[];
  /** Bytes of all weight files together. */
  weightBytes: number;
  /** 'gguf': the tokenizer stored in the GGUF file's metadata (see `ggufTokenizer`). */
  tokenizer: 'bytes' | 'tokenizer.json' | 'gguf' | 'none';
  /** When tokenizer is 'gguf': the GGUF file and its tokenizer as tokenizer.json text (app/tokenizer/gguf.ts). */
  ggufTokenizer?: { file: string; json: string };
  /**
   * The end-of-sequence token ids (app/formats/eos.ts): generation_config.json's `eos_token_id`
   * when it has one, else config.json's; GGUF `tokenizer.ggml.eos_token_id`. Each < the
   * vocabulary size. Absent or empty: the model declares none (generation runs to its limit).
   */
  eosTokenIds?: number[];
  /** A GGUF file's `tokenizer.chat_template` (app/tokenizer/chat-template.ts), or why it cannot be used. */
  ggufChatTemplate?: ChatTemplate | { error: string };
  warnings: string[];
}

/** The inspection with a hybrid's KV caches sized for `tokens` of context (config.ts withContext); unchanged without a choice. */
export function withContextTokens(inspection: ModelInspection, tokens: number | undefined): ModelInspection {
  return tokens === undefined ? inspection : { ...inspection, config: withContext(inspection.config, tokens) };
}
