/**
 * Op: sampling of the next token on the GPU: repetition penalty, temperature (0 = greedy argmax,
 * ties → lowest id), top-k, top-p, then the inverse CDF with a caller-drawn u ∈ [0, 1) over the
 * surviving ids in index order. Only the chosen id (one u32) needs reading back. Two kernels: when
 * sampling with 2 ≤ top-k ≤ CANDIDATE_SLOTS, a first stage over the vocabulary in many workgroups
 * keeps each block's top-k with ties (shaders/sample_candidates.wgsl), and the pick (one
 * workgroup, shaders/sample.wgsl) walks those candidates instead of the whole vocabulary in each
 * of its passes; it walks the whole vocabulary when top-k is off or above the slots, when a
 * block's ties overflow its slots, and when greedy (one pass over the vocabulary, which the first
 * stage would not shorten; SampleOptions.candidates 'all' runs it for greedy too, for the bench to
 * compare). When top-k keeps at most 256 ids, the pick finishes top-p and the inverse CDF over
 * them in workgroup memory. Reference: sample.ref.ts (same order, so the same u picks the same
 * token).
 */
import candidatesCode from '../../shaders/sample_candidates.wgsl?raw';
import commonCode from '../../shaders/sample_common.wgsl?raw';
import code from '../../shaders/sample.wgsl?raw';
import { storageBuffer, uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { encodeParts, kernelPart, type Dispatch } from './dispatch.js';
import { bindGroupFor, bindGroupLayoutFor, checkBufferBytes, foldWorkgroups, placeholderBuffer } from './op-helpers.js';
import { subgroupHelpers, subgroupReduction } from './subgroups.js';

const OP = 'Sample';
const MAX_WORKGROUP_SIZE = 1024;
/** The first stage: invocations a workgroup (one a histogram bin of its radix select) and ids each takes. */
const CANDIDATE_THREADS = 256;
const CANDIDATE_IDS_PER_THREAD = 4;
/** Ids of the vocabulary a first-stage workgroup takes. */
export const CANDIDATE_BLOCK = CANDIDATE_THREADS * CANDIDATE_IDS_PER_THREAD;
/**
 * Candidate slots a block: the largest top-k the first stage serves (its ties at the boundary
 * take slots too; a block with more falls back to the whole vocabulary). HF's default top-k is 50,
 * the app's 40.
 */
export const CANDIDATE_SLOTS = 64;
/** Beyond this vocabulary (no real one comes near: 256k is the largest known) no candidates are kept. */
const MAX_CANDIDATE_VOCAB = 1 << 24;
/** The most ids top-k may keep for the pick's short finish in workgroup memory (sample.wgsl SMALL). */
const SHORT_FINISH_IDS = 256;
const CANDIDATE_CONSTANTS = `const CAND_THREADS: u32 = ${CANDIDATE_THREADS}u;\nconst CAND_PER: u32 = ${CANDIDATE_IDS_PER_THREAD}u;\nconst CAP: u32 = ${CANDIDATE_SLOTS}u;\nconst SMALL: u32 = ${SHORT_FINISH_IDS}u;\n`;


export interface SampleShape {
  vocab: number; // V
  /** Element offset of the row in `logits` (the last position's row in prefill: (T − 1)·V). */
  logitsOffset?: number;
}

export interface SampleBuffers {
  logits: GPUBuffer; // [.., V]
  token: GPUBuffer; // [1] u32 out; copy it to a MAP_READ buffer to read it
  /** [ceil(V / 32)] u32 bitset of ids already in the context (seenBitset); needed for the repetition penalty. */
  seen?: GPUBuffer;
}

export interface SampleSettings {
  /** 0 = greedy (exact argmax). */
  temperature: number;
  /** 0 = off; 1 = greedy. */
  topK: number;
  /** In (0, 1]; 1 = off. */
  topP: number;
  /** > 0; 1 = off. HF's rule: logit > 0 → logit / p, else logit · p, for ids set in `seen`. */
  repetitionPenalty: number;
  /** Uniform random number in [0, 1) from the caller's seeded generator; a new one each step. */
  u: number;
}

export interface SampleOptions {
  /** Set the chosen id's bit in `seen`, so the next step penalizes it too (default: true when `seen` is given). */
  markChosen?: boolean;
  /**
   * Where the first stage runs: 'sampling' where sampling with 2 ≤ top-k ≤ CANDIDATE_SLOTS (the
   * default on a GPU); 'all' greedy too (as top-k = 1); 'none' never, the whole vocabulary searched
   * (the default on a software adapter, which runs workgroups one after another: there the stage
   * cost more than it saved, SwiftShader 84 against 67 ms a sampling of 50,280 logits).
   */
  candidates?: CandidateUse;
}

/** The first stage's output (shaders/sample_common.wgsl gives the layout). */
export interface SampleCandidates {
  buffer: GPUBuffer;
  /** Blocks of CANDIDATE_BLOCK ids: ceil(V / CANDIDATE_BLOCK). */
  blocks: number;
}

/** A sampling dispatch; `set` changes the settings (u each step) with no allocation. */
export interface SampleDispatch extends Dispatch {
  set(settings: SampleSettings): void;
  /**
   * Appends to `encoder` a copy of u (one f32, below 1: sampleU) from `from` at byte `offset` into
   * the params, so that several samplings in one command buffer each take their own u (set's
   * writeBuffer lands before the whole command buffer runs).
   */
  encodeU(encoder: GPUCommandEncoder, from: GPUBuffer, offset: number): void;
  /** Whether the settings last set run the first stage (candidateCount > 0). */
  readonly usesCandidates: boolean;
  /** The first stage's buffer; null where it never runs (options.candidates 'none', or a vocabulary over 2^24). */
  readonly candidates: SampleCandidates | null;
}

export type CandidateUse = 'sampling' | 'all' | 'none';

/** The ids the first stage keeps a block for these settings (before ties), or 0 where it does not run. */
export function candidateCount(s: Pick<SampleSettings, 'temperature' | 'topK'>, use: CandidateUse = 'sampling'): number {
  const greedy = s.temperature === 0 || s.topK === 1;
  if (use === 'none' || (greedy && use !== 'all')) return 0;
  const k = greedy ? 1 : s.topK;
  return k >= 1 && k <= CANDIDATE_SLOTS ? k : 0;
}

/** u as the sampler takes it: rounded to f32 it could reach 1, so it is kept below. */
export function sampleU(u: number): number {
  return Math.min(u, 0.99999994);
}

export const GREEDY: SampleSettings = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, u: 0 };

/** The `seen` bitset for `ids` (the prompt, say): bit i of word i >> 5 marks id i. */
export function seenBitset(ids: Iterable<number>, vocab: number): Uint32Array {
  const words = new Uint32Array(Math.ceil(vocab / 32));
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new RangeError(`${OP}: token id ${id} is outside 0..${vocab - 1}`);
    words[id >>> 5] = (words[id >>> 5] as number) | (1 << (id & 31));
  }
  return words;
}

export function checkSampleSettings(s: SampleSettings): void {
  const fail = (what: string, value: number) => {
    throw new RangeError(`${OP}: ${what}, got ${value}`);
  };
  if (!(Number.isFinite(s.temperature) && s.temperature >= 0)) fail('temperature must be finite and ≥ 0', s.temperature);
  if (!(Number.isInteger(s.topK) && s.topK >= 0 && s.topK <= 0xffffffff)) fail('topK must be an integer ≥ 0', s.topK);
  if (!(s.topP > 0 && s.topP <= 1)) fail('topP must be in (0, 1]', s.topP);
  if (!(Number.isFinite(s.repetitionPenalty) && s.repetitionPenalty > 0)) fail('repetitionPenalty must be finite and > 0', s.repetitionPenalty);
  if (!(s.u >= 0 && s.u < 1)) fail('u must be in [0, 1)', s.u);
}

/** The largest power of two the device allows in one workgroup, up to 1024. */
function workgroupSize(ctx: GpuContext): number {
  const l = ctx.adapter.limits;
  const cap = Math.min(MAX_WORKGROUP_SIZE, l.maxComputeInvocationsPerWorkgroup, l.maxComputeWorkgroupSizeX);
  let size = 1;
  while (size * 2 <= cap) size *= 2;
  return size;
}

export function sample(
  ctx: GpuContext,
  shape: SampleShape,
  buffers: SampleBuffers,
  settings: SampleSettings,
  label = OP,
  options: SampleOptions = {},
): SampleDispatch {
  const { vocab } = shape;
  const offset = shape.logitsOffset ?? 0;
  if (!Number.isInteger(vocab) || vocab < 1 || vocab > 0x7fffffff) throw new RangeError(`${OP}: vocab must be a positive integer, got ${vocab}`);
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff) throw new RangeError(`${OP}: logitsOffset must be an integer ≥ 0, got ${offset}`);
  checkBufferBytes(OP, 'logits', buffers.logits, (offset + vocab) * 4);
  checkBufferBytes(OP, 'token', buffers.token, 4);
  if (buffers.seen) checkBufferBytes(OP, 'seen', buffers.seen, Math.ceil(vocab / 32) * 4);
  for (const [name, buffer] of [
    ['logits', buffers.logits],
    ['seen', buffers.seen],
  ] as const) {
    if (buffer === buffers.token) throw new RangeError(`${OP}: token and ${name} are the same buffer (${buffer.label}); token is written`);
  }
  if (buffers.seen && buffers.seen === buffers.logits) {
    throw new RangeError(`${OP}: seen and logits are the same buffer (${buffers.seen.label}); seen is written`);
  }
  checkSampleSettings(settings);

  const { device } = ctx;
  // params, logits, seen, token, candidates
  const bindGroupLayout = bindGroupLayoutFor(ctx, OP, ['uniform', 'read-only-storage', 'storage', 'storage', 'storage']);
  // top-k and top-p thresholds by a 16-ary search where subgroups of a known layout divide the
  // workgroup (8 passes over the vocabulary for a threshold instead of up to 32).
  const threads = workgroupSize(ctx);
  const sub = subgroupReduction(ctx, threads);
  // Workgroup memory then: red_f and red_u (4 bytes a thread each), red_v4 (64 bytes a subgroup), the search range and two atomics,
  // and the short finish's ids (12 bytes each) and two words (without subgroups: 11.1 KB at 1,024 threads, under WebGPU's 16 KB floor).
  const withSubgroups = sub.size > 0 && 8 * threads + 64 * (threads / sub.size) + 16 + 12 * SHORT_FINISH_IDS + 8 <= ctx.device.limits.maxComputeWorkgroupStorageSize;
  const pipeline = ctx.pipelines.get({
    op: OP,
    code: subgroupHelpers(withSubgroups) + CANDIDATE_CONSTANTS + commonCode + code,
    layout: bindGroupLayout,
    constants: { WORKGROUP_SIZE: threads, SG_SIZE: withSubgroups ? sub.size : 0 },
  });
  const params = uniformBuffer(device, `${label}.params`, 32);
  const owned: GPUBuffer[] = [params];
  const seen = buffers.seen ?? placeholderBuffer(device, `${label}.noSeen`, owned);
  const markChosen = buffers.seen !== undefined && (options.markChosen ?? true);
  const blocks = Math.ceil(vocab / CANDIDATE_BLOCK);
  let candidates: SampleCandidates | null = null;
  const use = options.candidates ?? (ctx.adapter.software ? 'none' : 'sampling');
  if (use !== 'none' && vocab <= MAX_CANDIDATE_VOCAB) {
    // A count and a threshold a block, then a (value, id) pair a slot: ~0.5 KB a block of 1,024 ids.
    const buffer = storageBuffer(device, `${label}.candidates`, 4 * blocks * (2 + 2 * CANDIDATE_SLOTS));
    owned.push(buffer);
    candidates = { buffer, blocks };
  }
  const candidateBuffer = candidates?.buffer ?? placeholderBuffer(device, `${label}.noCandidates`, owned);
  let usesCandidates = false;

  const data = new ArrayBuffer(32);
  const words = new Uint32Array(data);
  const floats = new Float32Array(data);
  const set = (s: SampleSettings): void => {
    checkSampleSettings(s);
    const penalize = buffers.seen !== undefined && s.repetitionPenalty !== 1;
    usesCandidates = candidates !== null && candidateCount(s, use) > 0;
    words[0] = vocab;
    words[1] = offset;
    words[2] = s.topK;
    words[3] = (penalize ? 1 : 0) | (markChosen ? 2 : 0) | (usesCandidates ? 4 : 0);
    floats[4] = s.temperature;
    floats[5] = s.topP;
    floats[6] = s.repetitionPenalty;
    floats[7] = sampleU(s.u);
    device.queue.writeBuffer(params, 0, data);
  };
  set(settings);

  const bindGroup = bindGroupFor(
    device,
    `${label}.bindGroup`,
    bindGroupLayout,
    [params, buffers.logits, seen, buffers.token, candidateBuffer].map((buffer) => ({ buffer })),
  );
  const pickPart = kernelPart('pick', pipeline, bindGroup, [1]);
  // The first stage's pipeline only where it can run (its compile is not free on a software adapter).
  const parts = candidates
    ? [
        kernelPart(
          'candidates',
          ctx.pipelines.get({ op: `${OP}Candidates`, code: CANDIDATE_CONSTANTS + commonCode + candidatesCode, entryPoint: 'candidates', layout: bindGroupLayout }),
          bindGroup,
          foldWorkgroups(blocks, device.limits.maxComputeWorkgroupsPerDimension),
        ),
        pickPart,
      ]
    : [pickPart];
  const encodeBoth = encodeParts(parts);
  return {
    label,
    parts,
    // The first stage only where the settings use it (it would return at once otherwise).
    encode: (pass) => (usesCandidates ? encodeBoth(pass) : pickPart.encode(pass)),
    destroy() {
      for (const b of owned) b.destroy();
    },
    set,
    encodeU(encoder, from, offset) {
      encoder.copyBufferToBuffer(from, offset, params, 28, 4);
    },
    get usesCandidates() {
      return usesCandidates;
    },
    candidates,
  };
}
