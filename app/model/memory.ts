/**
 * How much GPU memory a model needs, from its inspection alone (before anything is allocated):
 * the weights as stored on the GPU (exact: the loader makes one buffer per tensor of this size),
 * the activations for a prefill chunk of `maxTokens` tokens, and one session (its state and its
 * logits). The activations and the state are upper bounds for the mixers the studio has (Mamba-1
 * and Mamba-2, whose sizes the formulas below take the larger of, field by field);
 * test/gpu/memory-check.test.ts checks them against what built models allocate. The memory plan
 * (memory-plan.ts: these numbers, trace buffers, the adapter's limits and the device's memory,
 * checked before anything is allocated) builds on them.
 */
import { BLOCK_FORMATS, isBlockFormat, rowQuantum, weightBytes, weightDataBytes, type WeightFormat } from '../kernels/weight-format.js';
import type { TensorLocation } from '../formats/tensor-location.js';
import { MATMUL_SCRATCH_ELEMENTS } from '../kernels/matmul.js';
import { selectiveScanSummaryElements } from '../kernels/selective-scan.js';
import { ssdScratchElements } from '../kernels/ssd.js';
import { attentionScratchElements, DECODE_MAX_TOKENS } from '../kernels/attention.js';
import type { ModelInspection } from './inspection.js';
import type { MambaConfig } from './config.js';
import { int8MatrixBytes, isInt8Projection, type PrefillMatmul } from './int8-plan.js';

export interface GpuMemoryNeed {
  /** The weights as stored on the GPU (fp32, or packed halves for the big matrices with 'f16'). */
  weights: number;
  /** Activations for a chunk of `maxTokens` tokens, scratch, the prefill's own state and logits, the per-layer packed scan weights. */
  activations: number;
  /** One session: its recurrent state and its logits. */
  session: number;
  total: number;
  maxTokens: number;
  /** A hybrid's KV caches for one sequence (in `session`), for `kvTokens` tokens of context; 0 without attention blocks. */
  kvCache: number;
  kvTokens: number;
  /**
   * With prefillMatmul 'int8' (app/model/int8-prefill.ts): the int8 codes and row scales of every
   * mixer projection it quantizes, and the activations' codes for a chunk; in `total`. 0 with fp32.
   */
  int8: number;
}

/** Whether `weightFormat: 'f16'` stores tensor `name` as packed halves (2-D projection matrices and the embedding). */
export function storedAsF16(name: string, shape: readonly number[], embeddingName: string): boolean {
  if (shape.length !== 2) return false;
  return name === embeddingName || name === 'lm_head.weight' || /(^|\.)(in_proj|x_proj|dt_proj|out_proj|[qkvo]_proj|up_proj|down_proj|gate_proj|fc1|fc2|input_linear|output_linear)\.weight$/.test(name);
}

/**
 * Whether every kernel that reads tensor `name` reads ggml block formats: the matrices only matmul,
 * norm-matvec and the embedding gather read (dt_proj is read by the scan's fused step too, which
 * takes the float formats only).
 */
function readsBlocks(name: string, shape: readonly number[], embeddingName: string): boolean {
  return storedAsF16(name, shape, embeddingName) && !/(^|\.)dt_proj\.weight$/.test(name);
}

/** What a user picks for the weights on the GPU: the checkpoint's own precision ('auto'), fp32 everywhere, or halves for the big matrices. */
export type WeightChoice = 'auto' | 'f32' | 'f16';
export const WEIGHT_CHOICES: readonly WeightChoice[] = ['auto', 'f32', 'f16'];

/** The file's encoding of a tensor as a GPU weight format, when a kernel can read it as it is. */
function fileFormat(t: Pick<TensorLocation, 'dtype' | 'encoding'> & { transform?: string }): WeightFormat | null {
  if (t.encoding === 'gguf' && t.transform !== 'none') return null;
  switch (t.dtype) {
    case 'F32':
      return 'f32';
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    default: {
      const lower = t.dtype.toLowerCase();
      return (BLOCK_FORMATS as readonly string[]).includes(lower) ? (lower as WeightFormat) : null;
    }
  }
}

/**
 * How tensor `t` is stored on the GPU for a choice:
 * - 'f32': fp32 everywhere (any encoding dequantized on the CPU while loading);
 * - 'f16': the big matrices (storedAsF16) as packed halves, the rest fp32;
 * - 'auto': the checkpoint's own precision where the kernels that read the tensor take it — the big
 *   matrices stay F16, BF16 or in their ggml block format (Q8_0 … Q6_K; dt_proj, which the scan's
 *   fused step reads, only in the float formats) when their rows are whole blocks; everything else
 *   (norms, conv, A, D, biases: small) and what no kernel reads as stored is fp32.
 */
export function tensorWeightFormat(
  t: Pick<TensorLocation, 'name' | 'shape' | 'dtype' | 'encoding'> & { transform?: string },
  choice: WeightChoice,
  embeddingName: string,
): WeightFormat {
  if (choice === 'f32' || !storedAsF16(t.name, t.shape, embeddingName)) return 'f32';
  if (choice === 'f16') return 'f16';
  const own = fileFormat(t);
  if (own === null) return 'f32';
  if (isBlockFormat(own)) {
    const row = t.shape[t.shape.length - 1] as number;
    return readsBlocks(t.name, t.shape, embeddingName) && row % rowQuantum(own) === 0 ? own : 'f32';
  }
  return own;
}

/** Every tensor's GPU format for a choice (tensorWeightFormat). */
export function weightFormats(choice: WeightChoice, inspection: Pick<ModelInspection, 'tensors' | 'embeddingName'>): Map<string, WeightFormat> {
  const formats = new Map<string, WeightFormat>();
  for (const t of inspection.tensors.values()) formats.set(t.name, tensorWeightFormat(t, choice, inspection.embeddingName));
  return formats;
}

/**
 * A short description of the GPU formats of the big matrices ("f16", "q4_k + q6_k", "fp32"), for
 * the app and the CLI: the formats other than fp32 by how many bytes they hold, then "fp32" if
 * any matrix is fp32.
 */
export function describeWeightFormats(formats: ReadonlyMap<string, WeightFormat>, inspection: Pick<ModelInspection, 'tensors' | 'embeddingName'>): string {
  const bytes = new Map<WeightFormat, number>();
  for (const t of inspection.tensors.values()) {
    if (!storedAsF16(t.name, t.shape, inspection.embeddingName)) continue;
    const f = formats.get(t.name) ?? 'f32';
    bytes.set(f, (bytes.get(f) ?? 0) + weightBytes(elementsOf(t.shape), f));
  }
  const named: string[] = [...bytes.entries()].filter(([f]) => f !== 'f32').sort((a, b) => b[1] - a[1]).map(([f]) => f);
  if (bytes.has('f32') || named.length === 0) named.push('fp32');
  return named.join(' + ');
}

const elementsOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Rows firstRow .. firstRow + rows − 1 of a matrix, in a buffer of their own. */
export interface WeightPart {
  buffer: GPUBuffer;
  firstRow: number;
  rows: number;
}

/** Rows per part of a split matrix are a multiple of this (keeps every part's start word-aligned for halves). */
const PART_ROWS = 64;

/**
 * The row ranges tensor `name` is stored in: one range when it fits in `limit` bytes; for the
 * embedding and an untied LM head (the tensors of vocabulary size, the only ones that outgrow a
 * binding, and whose kernels run per range) as many ranges of whole multiples of 64 rows as it
 * takes; null when it does not fit and cannot be split.
 */
export function weightParts(name: string, shape: readonly number[], format: WeightFormat, limit: number, embeddingName: string): { firstRow: number; rows: number }[] | null {
  const rows = shape.length === 2 ? (shape[0] as number) : 1;
  if (weightBufferBytes(shape, format) <= limit) return [{ firstRow: 0, rows }];
  if (shape.length !== 2 || (name !== embeddingName && name !== 'lm_head.weight')) return null;
  const cols = shape[1] as number;
  const perRow = weightDataBytes(cols, format);
  const rowsPerPart = Math.floor((limit - 16) / perRow / PART_ROWS) * PART_ROWS;
  if (rowsPerPart < PART_ROWS) return null;
  const out: { firstRow: number; rows: number }[] = [];
  for (let first = 0; first < rows; first += rowsPerPart) out.push({ firstRow: first, rows: Math.min(rowsPerPart, rows - first) });
  return out;
}

/** Bytes of all the GPU buffers of a tensor, split as weightParts splits it under `limit` (no limit: one buffer). */
export function tensorGpuBytes(name: string, shape: readonly number[], format: WeightFormat, embeddingName: string, limit?: number): number {
  const ranges = limit === undefined ? null : weightParts(name, shape, format, limit, embeddingName);
  if (!ranges || ranges.length === 1) return weightBufferBytes(shape, format);
  const cols = shape[1] as number;
  return ranges.reduce((sum, r) => sum + weightBytes(r.rows * cols, format), 0);
}

/** The bytes of tensor `name`'s GPU buffer when stored in `format`. */
export function weightBufferBytes(shape: readonly number[], format: WeightFormat = 'f32'): number {
  return weightBytes(elementsOf(shape), format);
}

/** The int8 prefill's GPU bytes (GpuMemoryNeed.int8): every mixer projection's codes and scales, and the activations' for a chunk of `maxTokens`. */
export function int8PrefillBytes(inspection: ModelInspection, maxTokens: number): number {
  let bytes = int8MatrixBytes(maxTokens, Math.max(inspection.config.dModel, inspection.config.dInner));
  for (const t of inspection.tensors.values()) if (isInt8Projection(t.name, t.shape)) bytes += int8MatrixBytes(t.shape[0] as number, t.shape[1] as number);
  return bytes;
}

export function gpuMemoryNeed(inspection: ModelInspection, options: { maxTokens?: number; weightFormat?: WeightChoice; bindingLimit?: number; prefillMatmul?: PrefillMatmul } = {}): GpuMemoryNeed {
  const T = options.maxTokens ?? 256;
  const c = inspection.config;
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R, nHeads: H, nGroups: G, vocabSize: V } = c;
  let weights = 0;
  const formats = weightFormats(options.weightFormat ?? 'f32', inspection);
  for (const t of inspection.tensors.values()) weights += tensorGpuBytes(t.name, t.shape, formats.get(t.name) ?? 'f32', inspection.embeddingName, options.bindingLimit);
  const hybrid = hybridMemory(c);
  // Per SSM block: Mamba-1's conv history (K−1)·Di and state Di·N; Mamba-2's conv history covers B and C too.
  // A hybrid's attention blocks add their KV caches (hybridMemory), its MLP blocks no state.
  const state = 4 * hybrid.ssmBlocks * (Di * (K - 1 + N) + 2 * G * N * (K - 1)) + hybrid.kvCache;
  // Per token: the model's ids, hidden, residual, normed; the mixer's (shared by every layer):
  // Mamba-1 xz 2Di, xc, dtRaw, y, Δ Di each, dbc R+2N; Mamba-2 zxbcdt 2Di+2GN+H, xc Di+2GN, y, gated Di each, Δ H.
  const perToken = 1 + 3 * D + 6 * Di + R + 2 * N + 4 * G * N + 2 * H + hybrid.perToken;
  const chunk = Math.min(Math.max(c.chunkSize, 1), 1024);
  const ssd = ssdScratchElements({ tokens: T, nHeads: H, headDim: c.headDim, nGroups: G, dState: N }, chunk);
  const scratch = T > 1 ? MATMUL_SCRATCH_ELEMENTS + selectiveScanSummaryElements(T, Di, N) + ssd.cums + ssd.chunkState + ssd.cb : 0;
  // Per layer, the scan's packed weights: Mamba-1 A_log, D and dt_bias (Di·(N+2)); Mamba-2 (which has heads) A, D, dt_bias per head.
  const packed = 4 * hybrid.ssmBlocks * (H > 0 ? 3 * H : Di * (N + 2));
  const activations = 4 * (T * perToken + scratch + V + hybrid.fixed) + state + packed;
  const session = state + 4 * V;
  const int8 = options.prefillMatmul === 'int8' ? int8PrefillBytes(inspection, T) : 0;
  return { weights, activations, session, total: weights + activations + session + int8, maxTokens: T, kvCache: hybrid.kvCache, kvTokens: hybrid.kvTokens, int8 };
}

/**
 * A hybrid's blocks in memory terms: how many are SSM blocks, the KV caches' bytes (per attention
 * block keys and values of `capacity` tokens, a u32 mask per position, the length, the qkv conv's
 * window when there is one), the attention and MLP activations per token and fixed (floats). A
 * model without hybrid blocks: every block an SSM block, nothing else.
 */
export function hybridMemory(c: MambaConfig): { ssmBlocks: number; kvCache: number; kvTokens: number; perToken: number; fixed: number } {
  const h = c.hybrid;
  if (!h) return { ssmBlocks: c.nLayer, kvCache: 0, kvTokens: 0, perToken: 0, fixed: 0 };
  const count = (kind: string) => h.blocks.filter((b) => b.kind === kind).length;
  const a = h.attention;
  const attention = a ? count('attention') : 0;
  const qkv = a ? (a.nHeads + 2 * a.nKvHeads) * a.headDim : 0;
  const perCache = a ? 4 * (2 * a.capacity * a.nKvHeads * a.headDim + a.capacity + 4 + (a.dConv > 0 ? qkv * (a.dConv - 1) : 0)) : 0;
  const mlp = h.mlp && count('mlp') > 0 ? (h.mlp.gated ? 3 : 2) * h.mlp.intermediate : 0;
  // Attention per token (app/arch/hybrid/attention.ts, shared by its blocks): the qkv rows (and their
  // conv), q and k after RoPE, the output before o_proj; fixed: the decode's partials for up to
  // DECODE_MAX_TOKENS rows and the RoPE table. The MLP per token: its up rows and the activation.
  const qDim = a ? a.nHeads * a.headDim : 0;
  const attentionPerToken = a && attention > 0 ? qkv * (a.dConv > 0 ? 2 : 1) + 2 * qDim + a.nKvHeads * a.headDim : 0;
  const fixed = a && attention > 0 ? attentionScratchElements({ tokens: DECODE_MAX_TOKENS, nHeads: a.nHeads, headDim: a.headDim, capacity: a.capacity }) + a.capacity * a.rotaryDim : 0;
  return { ssmBlocks: count('ssm'), kvCache: attention * perCache, kvTokens: a ? a.capacity : 0, perToken: attentionPerToken + mlp, fixed };
}
