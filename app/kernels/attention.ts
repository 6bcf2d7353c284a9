/**
 * Ops: causal grouped-query self-attention over a KV cache (hybrid models' attention layers,
 * app/arch/hybrid/attention.ts), and the softmax probabilities of one head for the panels.
 * Shader: shaders/attention.wgsl. Reference: attention.ref.ts.
 *
 * `attention` adds, for T tokens whose q | k | v rows (after the projections and any conv) are
 * in a strided view `qkv`:
 *   rope_append   RoPE on q and k at positions len + t (len = meta[0], the cached tokens, read on
 *                 the GPU), the chunk's k and v into the cache rows len + t, mask[len + t] := 1 for
 *                 the knocked-out row (else 0);
 *   attend        T > DECODE_MAX_TOKENS: flash prefill, key tiles in workgroup memory and an
 *                 online softmax (no T×T matrix); else decode_partial + decode_combine: keys split
 *                 over workgroups of `splitLength` keys, one softmax partial each, then combined;
 *   advance       len := min(len + T, capacity).
 * Nothing is written at a position ≥ capacity (meta[1] := 1 then: the caller refuses before).
 * A knocked-out key j (mask[j] = 1) is skipped by every later query; its own query still sees it.
 */
import code from '../../shaders/attention.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from './dispatch.js';
import { bufferLayoutEntry, checkBufferBytes, checkBufferElements, checkCount, singleDispatch, U32_MAX } from './op-helpers.js';

const OP = 'Attention';
const THREADS = 64;
/** Query rows per workgroup of `attend` (Q_TILE), floats of one key tile (KV_TILE_FLOATS), keys per tile at most (MAX_K_TILE). */
const Q_TILE = 16;
const KV_TILE_FLOATS = 1536;
const MAX_K_TILE = 32;
/** Largest head dim the kernels hold (MAX_HEAD_DIM; attend keeps hd/4 ≤ 64 accumulators per thread). */
export const ATTENTION_MAX_HEAD_DIM = 256;
/** Most tokens the split decode path takes (more: the flash prefill). */
export const DECODE_MAX_TOKENS = 4;
/** Keys per split of the decode path (MAX_SPLIT in the shader). */
export const DECODE_SPLIT_LENGTH = 256;
/** Bytes of the cache's meta buffer: [len, overflowed, 0, 0] as u32. */
export const ATTENTION_META_BYTES = 16;

export interface AttentionShape {
  tokens: number; // T
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  capacity: number;
  /** rotaryDim / 2 pairs per head rotated (0: no RoPE). */
  rotaryDim: number;
  interleaved: boolean;
  scale: number;
  /** Row of this chunk whose key later queries skip (knockout), or null. */
  knockRow?: number | null;
  /** Element offset of row 0 of qkv, and elements between rows (default qDim + 2·kvDim). */
  qkvOffset?: number;
  qkvStride?: number;
  /** Tests: force a path (default: decode for T ≤ DECODE_MAX_TOKENS). */
  path?: 'auto' | 'prefill' | 'decode';
  /** Keys per split of the decode path (default DECODE_SPLIT_LENGTH, at most that). */
  splitLength?: number;
}

export interface AttentionBuffers {
  qkv: GPUBuffer; // view [T, qDim + 2·kvDim]
  /** [capacity, rotaryDim/2, 2] cos and sin (ropeTable); unused without RoPE. */
  rope: GPUBuffer | null;
  q: GPUBuffer; // [T, qDim] written: q after RoPE
  k: GPUBuffer; // [T, kvDim] written: this chunk's keys after RoPE
  keys: GPUBuffer; // [capacity, kvDim]
  values: GPUBuffer; // [capacity, kvDim]
  meta: GPUBuffer; // u32 [len, overflowed, 0, 0]
  mask: GPUBuffer; // u32 [capacity]
  output: GPUBuffer; // [T, qDim]
  /** Decode path: [T, nHeads, splits, headDim + 2] (attentionScratchElements). */
  partials: GPUBuffer | null;
}

/** cos and sin of p · θ^(−2i/rotaryDim) for p < capacity, i < rotaryDim/2: [capacity, rotaryDim/2, 2], computed in float64. */
export function ropeTable(capacity: number, rotaryDim: number, theta: number): Float32Array {
  const half = rotaryDim / 2;
  const table = new Float32Array(capacity * half * 2);
  const inv = Array.from({ length: half }, (_, i) => Math.pow(theta, (-2 * i) / rotaryDim));
  for (let p = 0; p < capacity; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * (inv[i] as number);
      table[(p * half + i) * 2] = Math.cos(angle);
      table[(p * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

/** Splits of the decode path for a cache of `capacity`. */
export function decodeSplits(capacity: number, splitLength = DECODE_SPLIT_LENGTH): number {
  return Math.ceil(capacity / splitLength);
}

/** Floats of the decode path's partials for `tokens` ≤ DECODE_MAX_TOKENS rows. */
export function attentionScratchElements(s: { tokens: number; nHeads: number; headDim: number; capacity: number; splitLength?: number }): number {
  return s.tokens * s.nHeads * decodeSplits(s.capacity, s.splitLength) * (s.headDim + 2);
}

type Binding = readonly [number, GPUBufferBindingType, GPUBuffer | undefined];

/** One entry point of attention.wgsl bound to the bindings it uses (each has its own layout). */
function entryDispatch(ctx: GpuContext, entryPoint: string, params: GPUBuffer, bindings: readonly Binding[], groups: readonly [number, number?, number?], label: string, owned: readonly GPUBuffer[]): Dispatch {
  const all: Binding[] = [[0, 'uniform', params], ...bindings];
  const key = `${OP}.${entryPoint}`;
  const layout = ctx.pipelines.bindGroupLayout(
    key,
    all.map(([binding, type]) => bufferLayoutEntry(binding, type)),
  );
  const pipeline = ctx.pipelines.get({ op: key, code, entryPoint, layout });
  const bindGroup = ctx.device.createBindGroup({ label: `${label}.bindGroup`, layout, entries: all.map(([binding, , buffer]) => ({ binding, resource: { buffer: buffer as GPUBuffer } })) });
  return singleDispatch(label, pipeline, bindGroup, groups, owned);
}

interface ParamValues {
  tokens: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  capacity: number;
  rotaryHalf: number;
  interleaved: boolean;
  knockRow: number;
  qkvOffset: number;
  qkvStride: number;
  splits: number;
  splitLength: number;
  scale: number;
  probsHead: number;
  hasMask: boolean;
  kTile: number;
}

function writeParams(device: GPUDevice, label: string, v: ParamValues): GPUBuffer {
  const params = uniformBuffer(device, `${label}.params`, 64);
  const data = new ArrayBuffer(64);
  const u = new Uint32Array(data);
  u.set([v.tokens, v.nHeads, v.nKvHeads, v.headDim, v.capacity, v.rotaryHalf, v.interleaved ? 1 : 0, v.knockRow, v.qkvOffset, v.qkvStride, v.splits, v.splitLength]);
  new Float32Array(data, 48, 1)[0] = v.scale;
  u.set([v.probsHead, v.hasMask ? 1 : 0, v.kTile], 13);
  device.queue.writeBuffer(params, 0, data);
  return params;
}

function checkHeads(nHeads: number, nKvHeads: number, headDim: number): void {
  checkCount(OP, 'nHeads', nHeads, 1);
  checkCount(OP, 'nKvHeads', nKvHeads, 1);
  checkCount(OP, 'headDim', headDim, 1, ATTENTION_MAX_HEAD_DIM);
  if (nHeads % nKvHeads !== 0) throw new RangeError(`${OP}: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
}

/** The dispatches of one attention layer over T tokens through its KV cache (see the file's comment). */
export function attention(ctx: GpuContext, shape: AttentionShape, buffers: AttentionBuffers, label = OP): Dispatch[] {
  const { tokens: T, nHeads: H, nKvHeads: Hkv, headDim: hd, capacity } = shape;
  checkCount(OP, 'tokens', T, 1);
  checkHeads(H, Hkv, hd);
  checkCount(OP, 'capacity', capacity, 1);
  if (T > capacity) throw new RangeError(`${OP}: ${T} tokens do not fit a KV cache of capacity ${capacity}`);
  checkCount(OP, 'rotaryDim', shape.rotaryDim, 0, hd);
  if (shape.rotaryDim % 2 !== 0) throw new RangeError(`${OP}: rotaryDim must be even, got ${shape.rotaryDim}`);
  if (!(Number.isFinite(shape.scale) && shape.scale > 0)) throw new RangeError(`${OP}: scale must be a positive number, got ${shape.scale}`);
  const knockRow = shape.knockRow ?? null;
  if (knockRow !== null) checkCount(OP, 'knockRow', knockRow, 0, T - 1);
  const qDim = H * hd;
  const kvDim = Hkv * hd;
  const qkvOffset = shape.qkvOffset ?? 0;
  const qkvStride = shape.qkvStride ?? qDim + 2 * kvDim;
  checkCount(OP, 'qkvOffset', qkvOffset, 0);
  checkCount(OP, 'qkvStride', qkvStride, qDim + 2 * kvDim);
  const decode = shape.path === 'decode' || ((shape.path ?? 'auto') === 'auto' && T <= DECODE_MAX_TOKENS);
  const splitLength = shape.splitLength ?? DECODE_SPLIT_LENGTH;
  checkCount(OP, 'splitLength', splitLength, 1, DECODE_SPLIT_LENGTH);
  const splits = decodeSplits(capacity, splitLength);
  const b = buffers;
  checkBufferElements(OP, 'qkv', b.qkv, qkvOffset + (T - 1) * qkvStride + qDim + 2 * kvDim);
  if (shape.rotaryDim > 0) {
    if (!b.rope) throw new RangeError(`${OP}: rotaryDim ${shape.rotaryDim} needs a RoPE table`);
    checkBufferElements(OP, 'rope', b.rope, capacity * shape.rotaryDim);
  }
  checkBufferElements(OP, 'q', b.q, T * qDim);
  checkBufferElements(OP, 'k', b.k, T * kvDim);
  checkBufferElements(OP, 'keys', b.keys, capacity * kvDim);
  checkBufferElements(OP, 'values', b.values, capacity * kvDim);
  checkBufferBytes(OP, 'meta', b.meta, 8);
  checkBufferElements(OP, 'mask', b.mask, capacity);
  checkBufferElements(OP, 'output', b.output, T * qDim);
  if (decode) {
    if (!b.partials) throw new RangeError(`${OP}: the decode path needs a partials buffer`);
    checkBufferElements(OP, 'partials', b.partials, T * H * splits * (hd + 2));
  }
  const written = [b.q, b.k, b.keys, b.values, b.meta, b.mask, b.output, ...(decode ? [b.partials as GPUBuffer] : [])];
  if (new Set(written).size !== written.length || written.includes(b.qkv) || (b.rope && written.includes(b.rope))) {
    throw new RangeError(`${OP}: q, k, keys, values, meta, mask, output and partials must be distinct buffers, none of them qkv or rope`);
  }
  const maxDim = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const columns = Math.ceil((qDim + 2 * kvDim) / THREADS);
  for (const [what, n] of [
    ['qkv columns', columns],
    ['tokens', T],
    ['heads × tokens', H * T],
    ['splits', splits],
  ] as const) {
    if (n > maxDim) throw new RangeError(`${OP}: ${what} need ${n} workgroups, over this device's ${maxDim} per dimension`);
  }

  const params = writeParams(ctx.device, label, {
    tokens: T,
    nHeads: H,
    nKvHeads: Hkv,
    headDim: hd,
    capacity,
    rotaryHalf: shape.rotaryDim / 2,
    interleaved: shape.interleaved,
    knockRow: knockRow ?? U32_MAX,
    qkvOffset,
    qkvStride,
    splits,
    splitLength,
    scale: shape.scale,
    probsHead: 0,
    hasMask: false,
    kTile: Math.min(MAX_K_TILE, Math.floor(KV_TILE_FLOATS / hd)),
  });
  const s = 'storage' as const;
  const dispatches = [
    entryDispatch(
      ctx,
      'rope_append',
      params,
      [
        [1, 'read-only-storage', b.qkv],
        [2, 'read-only-storage', b.rope ?? b.qkv],
        [3, s, b.q],
        [4, s, b.k],
        [5, s, b.keys],
        [6, s, b.values],
        [7, s, b.meta],
        [8, s, b.mask],
      ],
      [columns, T],
      `${label}.rope_append`,
      [params],
    ),
  ];
  const cache: Binding[] = [
    [3, s, b.q],
    [5, s, b.keys],
    [6, s, b.values],
    [7, s, b.meta],
    [8, s, b.mask],
  ];
  if (decode) {
    dispatches.push(entryDispatch(ctx, 'decode_partial', params, [...cache, [10, s, b.partials as GPUBuffer]], [H * T, splits], `${label}.decode_partial`, []));
    dispatches.push(
      entryDispatch(
        ctx,
        'decode_combine',
        params,
        [
          [9, s, b.output],
          [10, s, b.partials as GPUBuffer],
        ],
        [H * T],
        `${label}.decode_combine`,
        [],
      ),
    );
  } else {
    dispatches.push(entryDispatch(ctx, 'attend', params, [...cache, [9, s, b.output]], [Math.ceil(T / Q_TILE), H], `${label}.attend`, []));
  }
  dispatches.push(entryDispatch(ctx, 'advance', params, [[7, s, b.meta]], [1], `${label}.advance`, []));
  return dispatches;
}

export interface AttentionProbsShape {
  tokens: number; // T of the traced prompt (from position 0)
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  head: number;
  scale: number;
}

/**
 * Softmax probabilities [T, T] of query head `head` over the prompt's keys, causal (zeros above
 * the diagonal) and without the masked keys (mask[j] ≠ 0 hides key j from every later query):
 * q [T, nHeads·hd] and k [T, nKvHeads·hd] as the attention mixer's `attnQ` / `attnK` taps hold them.
 */
export function attentionProbs(ctx: GpuContext, shape: AttentionProbsShape, buffers: { q: GPUBuffer; k: GPUBuffer; mask?: GPUBuffer | null; probs: GPUBuffer }, label = `${OP}Probs`): Dispatch {
  const { tokens: T, nHeads: H, nKvHeads: Hkv, headDim: hd } = shape;
  checkCount(OP, 'tokens', T, 1);
  checkHeads(H, Hkv, hd);
  checkCount(OP, 'head', shape.head, 0, H - 1);
  if (!(Number.isFinite(shape.scale) && shape.scale > 0)) throw new RangeError(`${OP}: scale must be a positive number, got ${shape.scale}`);
  checkBufferElements(OP, 'q', buffers.q, T * H * hd);
  checkBufferElements(OP, 'k', buffers.k, T * Hkv * hd);
  if (buffers.mask) checkBufferElements(OP, 'mask', buffers.mask, T);
  checkBufferElements(OP, 'probs', buffers.probs, T * T);
  if ([buffers.q, buffers.k, buffers.mask].includes(buffers.probs)) throw new RangeError(`${OP}: probs (${buffers.probs.label}) is written, so it must not be q, k or mask`);
  const maxDim = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(T, maxDim);
  const params = writeParams(ctx.device, label, {
    tokens: T,
    nHeads: H,
    nKvHeads: Hkv,
    headDim: hd,
    capacity: T,
    rotaryHalf: 0,
    interleaved: false,
    knockRow: U32_MAX,
    qkvOffset: 0,
    qkvStride: 0,
    splits: 0,
    splitLength: 0,
    scale: shape.scale,
    probsHead: shape.head,
    hasMask: Boolean(buffers.mask),
    kTile: 0,
  });
  const r = 'read-only-storage' as const;
  return entryDispatch(
    ctx,
    'probs_rows',
    params,
    [
      [11, 'storage', buffers.probs],
      [12, r, buffers.q],
      [13, r, buffers.k],
      [14, r, buffers.mask ?? buffers.k],
    ],
    [x, Math.ceil(T / x)],
    label,
    [params],
  );
}
