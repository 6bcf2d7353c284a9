/**
 * How much GPU memory a model needs, from its inspection alone (before anything is allocated):
 * the weights as stored on the GPU (exact: the loader makes one buffer per tensor of this size),
 * the activations for a prefill chunk of `maxTokens` tokens, and one session (its state and its
 * logits). The activations are exact: the mixers size their buffers from the functions here
 * (mamba1Activations, mamba2Activations, attentionActivations, mlpActivations; activationBuffers
 * lists a model's), and the largest of them must fit one storage binding (the memory plan checks
 * it); test/gpu/memory-check.test.ts checks them, buffer by buffer, against what built models
 * allocate. The memory plan (memory-plan.ts: these numbers, trace buffers, the adapter's limits
 * and the device's memory, checked before anything is allocated) builds on them.
 */
import { BLOCK_FORMATS, isBlockFormat, rowQuantum, weightBytes, weightDataBytes, type WeightFormat } from '../kernels/weight-format.js';
import type { TensorLocation } from '../formats/tensor-location.js';
import { MATMUL_SCRATCH_ELEMENTS } from '../kernels/matmul.js';
import { mamba2Layout } from './mamba2-layout.js';
import { selectiveScanSummaryElements } from '../kernels/selective-scan.js';
import { ssdScratchElements } from '../kernels/ssd.js';
import { attentionScratchElements, DECODE_MAX_TOKENS } from '../kernels/attention.js';
import type { ModelInspection } from './inspection.js';
import { attentionDims, configBlocks, type AttentionConfig, type MambaConfig, type MlpConfig } from './config.js';
import { int8MatrixBytes, isInt8Projection, type PrefillMatmul } from './int8-plan.js';

export interface GpuMemoryNeed {
  /** The weights as stored on the GPU (fp32, or packed halves for the big matrices with 'f16'). */
  weights: number;
  /** Activations for a chunk of `maxTokens` tokens (activationBuffers), the token ids, the prefill's own state and logits, the per-layer packed scan weights. */
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
  /** The largest single activation buffer (activationBuffers), which must fit one storage binding. */
  largestActivation: { label: string; bytes: number };
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

/** One activation buffer: its label (LanguageModel.activation's, after the model's name) and its floats. */
export interface ActivationBuffer {
  label: string;
  elements: number;
}

const buffer = (label: string, elements: number): ActivationBuffer => ({ label, elements });

/**
 * Mamba-1's activations for chunks of T tokens, shared by its layers (app/arch/mamba1/mixer.ts
 * makes them from this): in_proj's rows [x | z], the conv output, x_proj's rows [dt_r | B | C],
 * dt_proj's, the scan's output and Δ, and the chunked scan's summaries (none for one chunk).
 */
export function mamba1Activations(c: Pick<MambaConfig, 'dInner' | 'dState' | 'dtRank'>, T: number) {
  const { dInner: Di, dState: N, dtRank: R } = c;
  return {
    xz: buffer('xz', T * 2 * Di),
    xc: buffer('xc', T * Di),
    dbc: buffer('dbc', T * (R + 2 * N)),
    dtRaw: buffer('dtRaw', T * Di),
    y: buffer('y', T * Di),
    delta: buffer('delta', T * Di),
    scanSummary: buffer('scanSummary', T > 1 ? selectiveScanSummaryElements(T, Di, N) : 0),
  };
}

/** Mamba-2's SSD chunk length: the config's chunk_size (or a bench's tuning), 1..1024. */
export function ssdChunkLength(c: Pick<MambaConfig, 'chunkSize'>, tuned?: number): number {
  return Math.min(Math.max(tuned ?? c.chunkSize, 1), 1024);
}

/**
 * Mamba-2's activations for chunks of T tokens, shared by its layers (app/arch/mamba2/mixer.ts
 * makes them from this): in_proj's rows [z | xBC | dt], the conv output, y, the gated y, Δ, and
 * the chunked SSD's scratch (none for one token).
 */
export function mamba2Activations(c: Pick<MambaConfig, 'dInner' | 'dState' | 'nHeads' | 'nGroups' | 'headDim' | 'chunkSize'>, T: number, chunkLength = ssdChunkLength(c)) {
  const { dInner: Di, dState: N, nHeads: H, nGroups: G } = c;
  const layout = mamba2Layout({ dInner: Di, nGroups: G, dState: N, nHeads: H });
  const ssd = ssdScratchElements({ tokens: T, nHeads: H, headDim: c.headDim, nGroups: G, dState: N }, chunkLength);
  const scratch = (elements: number) => (T > 1 ? elements : 0);
  return {
    zxbcdt: buffer('zxbcdt', T * layout.inProjWidth),
    xc: buffer('xc', T * layout.xbcWidth),
    y: buffer('y', T * Di),
    gated: buffer('gated', T * Di),
    delta: buffer('delta', T * H),
    ssdCums: buffer('ssdCums', scratch(ssd.cums)),
    ssdChunkState: buffer('ssdChunkState', scratch(ssd.chunkState)),
    ssdCb: buffer('ssdCb', scratch(ssd.cb)),
  };
}

/**
 * A hybrid's attention activations for chunks of T tokens, shared by its attention blocks
 * (app/arch/hybrid/attention.ts makes them from this): the qkv rows (and their conv), q and k
 * after RoPE, the output before o_proj, the decode's partials (for at most DECODE_MAX_TOKENS
 * rows) and the RoPE table.
 */
export function attentionActivations(a: AttentionConfig, T: number) {
  const { qDim, kvDim, qkvDim } = attentionDims(a);
  const key = `${qkvDim}.${qDim}.${kvDim}.${a.nHeads}.${a.capacity}.${a.dConv > 0 ? 'conv' : 'noconv'}`;
  return {
    key,
    qkv: buffer(`attention.qkv.${qkvDim}`, T * qkvDim),
    conv: buffer(`attention.qkvConv.${qkvDim}`, a.dConv > 0 ? T * qkvDim : 0),
    q: buffer(`attention.q.${qDim}`, T * qDim),
    k: buffer(`attention.k.${kvDim}`, T * kvDim),
    out: buffer(`attention.out.${qDim}`, T * qDim),
    partials: buffer(`attention.partials.${key}`, attentionScratchElements({ tokens: Math.min(T, DECODE_MAX_TOKENS), nHeads: a.nHeads, headDim: a.headDim, capacity: a.capacity })),
    rope: buffer(`attention.rope.${a.rotaryDim}`, a.capacity * a.rotaryDim),
  };
}

/** Columns of an MLP's up rows: [gate | up] when gated, else up. */
export function mlpUpWidth(m: MlpConfig): number {
  return m.gated ? 2 * m.intermediate : m.intermediate;
}

/** A hybrid's MLP activations for chunks of T tokens (app/arch/hybrid/mlp.ts): the up rows (mlpUpWidth) and the activation. */
export function mlpActivations(m: MlpConfig, T: number) {
  const upWidth = mlpUpWidth(m);
  return { up: buffer(`mlp.up.${upWidth}`, T * upWidth), hidden: buffer(`mlp.hidden.${m.intermediate}`, T * m.intermediate) };
}

/** The one-token rows a hybrid's attention and MLP blocks decode through (app/arch/hybrid/decode.ts): the norm's copy of its input, the normed row. */
export function hybridDecodeActivations(D: number) {
  return { copy: buffer('hybrid.decodeCopy', D), normed: buffer('hybrid.decodeNormed', D) };
}

/**
 * The activations of a model's SSM mixer for chunks of T tokens: Mamba-2's where the config has
 * heads (every Mamba-2 mixer has nHeads ≥ 1), else Mamba-1's (whose configs set nHeads to 0).
 */
export function ssmActivations(c: MambaConfig, T: number): ActivationBuffer[] {
  return Object.values(c.nHeads > 0 ? mamba2Activations(c, T) : mamba1Activations(c, T));
}

/**
 * Every activation buffer a model built for chunks of T tokens makes while it is built, once
 * each (layers of one kind share theirs): the hidden, residual and normed rows, the products'
 * scratch (more than one token), and each block kind's (ssmActivations, a hybrid's attention and
 * MLP blocks and their decode rows). Not counted: buffers made on first use that do not grow with
 * T (a traced decode's rows, Mamba-1's folded decode's x_proj partials). test/gpu/memory-check.test.ts
 * checks the list against what built models allocate, label by label.
 */
export function activationBuffers(c: MambaConfig, T: number): ActivationBuffer[] {
  const D = c.dModel;
  const list = [buffer('hidden', T * D), buffer('residual', T * D), buffer('normed', T * D), buffer('matmulScratch', T > 1 ? MATMUL_SCRATCH_ELEMENTS : 0)];
  const kinds = new Set(configBlocks(c).map((b) => b.kind));
  const h = c.hybrid;
  if (kinds.has('ssm')) list.push(...ssmActivations(c, T));
  if (kinds.has('attention') && h?.attention) {
    const { key: _key, ...buffers } = attentionActivations(h.attention, T);
    list.push(...Object.values(buffers));
  }
  if (kinds.has('mlp') && h?.mlp) list.push(...Object.values(mlpActivations(h.mlp, T)));
  if (kinds.has('attention') || kinds.has('mlp')) list.push(...Object.values(hybridDecodeActivations(D)));
  return list.filter((a) => a.elements > 0);
}

/** The largest of a model's activation buffers (activationBuffers; hidden, which every model makes first, on a tie), in bytes. */
export function largestActivation(buffers: readonly ActivationBuffer[]): { label: string; bytes: number } {
  const largest = buffers.reduce((a, b) => (b.elements > a.elements ? b : a));
  return { label: largest.label, bytes: 4 * largest.elements };
}

export function gpuMemoryNeed(inspection: ModelInspection, options: { maxTokens?: number; weightFormat?: WeightChoice; bindingLimit?: number; prefillMatmul?: PrefillMatmul } = {}): GpuMemoryNeed {
  const T = options.maxTokens ?? 256;
  const c = inspection.config;
  const { dInner: Di, dState: N, dConv: K, nHeads: H, nGroups: G, vocabSize: V } = c;
  let weights = 0;
  const formats = weightFormats(options.weightFormat ?? 'f32', inspection);
  for (const t of inspection.tensors.values()) weights += tensorGpuBytes(t.name, t.shape, formats.get(t.name) ?? 'f32', inspection.embeddingName, options.bindingLimit);
  const hybrid = hybridMemory(c);
  // Per SSM block: Mamba-1's conv history (K−1)·Di and state Di·N; Mamba-2's conv history covers B and C too.
  // A hybrid's attention blocks add their KV caches (hybridMemory), its MLP blocks no state.
  const state = 4 * hybrid.ssmBlocks * (Di * (K - 1 + N) + 2 * G * N * (K - 1)) + hybrid.kvCache;
  // Activations: the token ids, every activation buffer (activationBuffers), the prefill's logits; and its own state.
  const buffers = activationBuffers(c, T);
  // Per layer, the scan's packed weights: Mamba-1 A_log, D and dt_bias (Di·(N+2)); Mamba-2 (which has heads) A, D, dt_bias per head.
  const packed = 4 * hybrid.ssmBlocks * (H > 0 ? 3 * H : Di * (N + 2));
  const activations = 4 * (T + buffers.reduce((sum, a) => sum + a.elements, 0) + V) + state + packed;
  const session = state + 4 * V;
  const int8 = options.prefillMatmul === 'int8' ? int8PrefillBytes(inspection, T) : 0;
  return { weights, activations, session, total: weights + activations + session + int8, maxTokens: T, kvCache: hybrid.kvCache, kvTokens: hybrid.kvTokens, int8, largestActivation: largestActivation(buffers) };
}

/**
 * A hybrid's blocks in memory terms: how many are SSM blocks, and the KV caches' bytes (per
 * attention block keys and values of `capacity` tokens, a u32 mask per position, the length, the
 * qkv conv's window when there is one) with the tokens they hold. A model without hybrid blocks:
 * every block an SSM block, no cache. (Their activations: activationBuffers.)
 */
export function hybridMemory(c: MambaConfig): { ssmBlocks: number; kvCache: number; kvTokens: number } {
  const h = c.hybrid;
  if (!h) return { ssmBlocks: c.nLayer, kvCache: 0, kvTokens: 0 };
  const count = (kind: string) => h.blocks.filter((b) => b.kind === kind).length;
  const a = h.attention;
  const attention = a ? count('attention') : 0;
  const qkv = a ? attentionDims(a).qkvDim : 0;
  const perCache = a ? 4 * (2 * a.capacity * a.nKvHeads * a.headDim + a.capacity + 4 + (a.dConv > 0 ? qkv * (a.dConv - 1) : 0)) : 0;
  return { ssmBlocks: count('ssm'), kvCache: attention * perCache, kvTokens: a ? a.capacity : 0 };
}
