/**
 * Generation: prefill the prompt, then one step per token with sampling on the GPU. The only
 * GPU→CPU transfer per token is the sampled id (4 bytes). Temperature, top-k, top-p, repetition
 * penalty, seed, max tokens, stop strings (and stop ids), the model's end-of-sequence ids; greedy
 * (temperature 0) is exact argmax.
 */
import type { GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';
import { seededRandom } from '../random.js';
import { sample, sampleU, seenBitset, type SampleDispatch, type SampleSettings } from '../kernels/sample.js';
import type { StreamDecoder } from '../tokenizer/types.js';
import type { Session } from './session.js';

export interface GenerateOptions {
  maxTokens: number;
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** Generation stops when the decoded text contains one of these (the stop string is dropped). */
  stopStrings?: string[];
  /** Generation stops after one of these ids (it is not emitted). */
  stopIds?: ReadonlySet<number>;
  /**
   * The model's end-of-sequence ids (ModelInspection.eosTokenIds): generation stops when one is
   * sampled, with stopReason 'end-of-text'; the id is not emitted (not in `ids`, no text, no
   * onToken). Leave it out to generate past them.
   */
  eosIds?: ReadonlySet<number>;
  signal?: AbortSignal;
}

export interface GeneratedToken {
  id: number;
  /**
   * Text released with this token (may be '' mid-character, or while it could still be the start
   * of a stop string); every released piece, in order, makes up the result's text.
   */
  text: string;
  index: number;
  tokensPerSecond: number;
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `stops`. */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > hold; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

/** Why a generation ended: 'end-of-text' is the model's end-of-sequence token (GenerateOptions.eosIds). */
/** context-full: a hybrid's KV caches are full (Session.room). */
export type StopReason = 'max-tokens' | 'stop-string' | 'stop-id' | 'end-of-text' | 'cancelled' | 'context-full';

export interface GenerateResult {
  ids: number[];
  text: string;
  stopReason: StopReason;
  /** Decode rate over the generated tokens (prefill excluded). */
  tokensPerSecond: number;
  prefillSeconds: number;
}

/** How many sampled ids a pipelined decode may have in flight (submitted, not yet read). */
const PIPELINE_DEPTH = 3;

/**
 * The pipelined decode's depth on this context: PIPELINE_DEPTH, or what a benchmark forces
 * (tuning.decodeDepth), at least 2: the loop records token k as fed when it reads k and the step
 * that fed it (the one sampling k + 1) is already submitted.
 */
function pipelineDepth(ctx: GpuContext): number {
  return Math.max(2, ctx.tuning?.decodeDepth ?? Math.max(PIPELINE_DEPTH, 2 * decodeBatch(ctx)));
}

/**
 * Steps submitted together in one command buffer (Session.stepsFromGpu) by the pipelined decode:
 * the submit's CPU cost is paid once a batch. On H100 hosts (bench/RESULTS.md nineteenth session),
 * a CPU-bound one (≈1 ms of CPU a 130m step) took less CPU a step with 2 than with 1 in every
 * pair and decoded the 130m shapes 24–29 % faster (means of two rounds, noisy); a fast one
 * (0.45 ms) the same within its noise; mamba-2.8b (GPU-bound) 269 against 278 tok/s over three
 * runs each on two hosts, runs of one setting ±8 % apart (not a difference this noise can tell).
 * An id is readable once its command buffer is done: ids come in pairs.
 */
const DECODE_BATCH = 2;

/** The decode's steps a submit on this context: DECODE_BATCH, or what a benchmark forces (tuning.decodeBatch). */
function decodeBatch(ctx: GpuContext): number {
  return Math.max(1, ctx.tuning?.decodeBatch ?? DECODE_BATCH);
}


/**
 * Samples from `session.logits` on the GPU and reads back only the chosen id. Reads come back in
 * the order the samplings were encoded, through pipelineDepth + 1 staging buffers, so later
 * tokens' steps and samplings can be in flight while this one's id is read.
 */
export class GpuSampler {
  private readonly token: GPUBuffer;
  private readonly staging: GPUBuffer[];
  private readonly seen: GPUBuffer;
  private readonly dispatch: SampleDispatch;
  /** Each sampling's u, a slot a staging buffer: copied into the params inside the command buffer (SampleDispatch.encodeU). */
  private readonly us: GPUBuffer;
  private written = 0;
  private read_ = 0;
  /** Reads finished (their staging buffer unmapped, free to take the next copy). */
  private done = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly session: Session,
    settings: SampleSettings,
  ) {
    const { device } = ctx;
    const V = session.model.config.vocabSize;
    this.token = device.createBuffer({ label: 'Sampler.token', size: 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.staging = Array.from({ length: pipelineDepth(ctx) + 1 }, (_, i) =>
      device.createBuffer({ label: `Sampler.staging${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
    );
    this.seen = device.createBuffer({
      label: 'Sampler.seen',
      size: Math.ceil(V / 32) * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(this.seen, 0, seenBitset(session.tokens, V));
    this.dispatch = sample(ctx, { vocab: V }, { logits: session.logits, token: this.token, seen: this.seen }, settings, 'Sampler.sample');
    this.us = device.createBuffer({ label: 'Sampler.us', size: 4 * this.staging.length, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  }

  /**
   * Appends the sampling of the next token (with random number u) to a command buffer; with
   * `feed`, the chosen id is also copied to its first word (the model's ids buffer: the next step
   * can run without the CPU knowing the id).
   */
  encode(encoder: GPUCommandEncoder, u: number, feed?: GPUBuffer): void {
    if (this.written - this.done >= this.staging.length) throw new Error('GpuSampler: read the earlier ids before sampling more');
    // u through its own slot (written now, on the queue, before this command buffer is submitted;
    // the slot is not written again until its sampling has been read), copied into the params
    // right before this sampling: several samplings can share a command buffer.
    const slot = 4 * (this.written % this.staging.length);
    this.ctx.device.queue.writeBuffer(this.us, slot, new Float32Array([sampleU(u)]));
    this.dispatch.encodeU(encoder, this.us, slot);
    const pass = encoder.beginComputePass({ label: 'Sampler.pass' });
    this.dispatch.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(this.token, 0, this.staging[this.written % this.staging.length] as GPUBuffer, 0, 4);
    if (feed) encoder.copyBufferToBuffer(this.token, 0, feed, 0, 4);
    this.written++;
  }

  /** Reads the oldest sampled id not yet read (the one GPU→CPU transfer per token: 4 bytes). */
  async read(): Promise<number> {
    if (this.read_ >= this.written) throw new Error('GpuSampler: nothing sampled to read');
    const staging = this.staging[this.read_++ % this.staging.length] as GPUBuffer;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const id = new Uint32Array(staging.getMappedRange(0, 4))[0] as number;
      staging.unmap();
      return id;
    } finally {
      this.done++;
    }
  }

  /** Samples from the logits already computed (after a prefill): its own submit. */
  async next(u: number, feed?: GPUBuffer): Promise<number> {
    const encoder = this.ctx.device.createCommandEncoder({ label: 'Sampler.encoder' });
    this.encode(encoder, u, feed);
    this.ctx.device.queue.submit([encoder.finish()]);
    return this.read();
  }

  destroy(): void {
    this.dispatch.destroy();
    for (const b of [this.token, ...this.staging, this.seen, this.us]) b.destroy();
  }
}

export async function generate(
  ctx: GpuContext,
  session: Session,
  prompt: readonly number[],
  options: GenerateOptions,
  onToken?: (token: GeneratedToken) => void,
  decoder?: StreamDecoder,
  /** Text held back at the end (a partial stop string that never completed, a flushed character). */
  onTail?: (text: string) => void,
): Promise<GenerateResult> {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 0) throw new RangeError(`maxTokens must be an integer ≥ 0, got ${options.maxTokens}`);
  const started = performance.now();
  session.prefill(prompt);
  // Token k > 1 is fed by a step: k tokens need k − 1 more positions (a hybrid's KV caches bound them).
  const budget = Math.min(options.maxTokens, session.room + 1);
  const random = seededRandom(options.seed ?? 0);
  const sampler = new GpuSampler(ctx, session, {
    temperature: options.temperature ?? 0,
    topK: options.topK ?? 0,
    topP: options.topP ?? 1,
    repetitionPenalty: options.repetitionPenalty ?? 1,
    u: 0,
  });
  const ids: number[] = [];
  /**
   * Pipelined decode: the sampler copies each id into the model's ids buffer, so the step feeding
   * token k (and sampling token k+1) can be submitted before token k is read back. Up to
   * pipelineDepth samplings are in flight, so the GPU has the next steps queued while the CPU
   * waits for an id and handles it; the steps go in batches of decodeBatch a command buffer
   * (Session.stepsFromGpu), each submitted once the window has room for all of it (so with a
   * depth of twice the batch one batch runs while the next is queued). While tracing too: a step's trace row is its position, and
   * the ids follow as they are read (a live trace streams rows only up to the ids known). On an
   * early stop the state (and a trace) has consumed the tokens already fed beyond the last one
   * emitted (session.tokens says which).
   */
  const feed = session.model.idsBuffer;
  const depth = pipelineDepth(ctx);
  const batch = Math.min(decodeBatch(ctx), depth - 1);
  /** Reads of sampled ids, oldest first: token `ids.length` (+ stops) onwards. */
  const reads: Promise<number>[] = [];
  /** Tokens whose sampling has been submitted (token k is fed by the step that samples k+1). */
  let sampled = 0;
  /** Submits the next samplings if the window has room for them (the first alone: no step; then a batch, or what the budget leaves); false if not. */
  const sampleNext = (i: number): boolean => {
    if (sampled === 0) {
      reads.push(sampler.next(random(), feed));
      sampled++;
      return true;
    }
    const n = Math.min(batch, budget - sampled);
    if (n < 1 || sampled - i + n > depth) return false;
    // u drawn in token order, as one sampling a submit would.
    session.stepsFromGpu(n, (encoder) => sampler.encode(encoder, random(), feed));
    for (let k = 0; k < n; k++) reads.push(sampler.read());
    sampled += n;
    return true;
  };
  let text = '';
  /** How much of `text` has been handed to onToken. */
  let released = 0;
  let stopReason: GenerateResult['stopReason'] = budget < options.maxTokens ? 'context-full' : 'max-tokens';
  let prefillSeconds = 0;
  let decodeStart = 0;
  const stops = options.stopStrings?.filter((s) => s.length > 0) ?? [];
  let i = 0;
  try {
    for (; i < budget; i++) {
      if (options.signal?.aborted) {
        stopReason = 'cancelled';
        break;
      }
      while (sampleNext(i));
      const id = await (reads.shift() as Promise<number>);
      if (i + 1 < sampled) session.fed(id); // the step sampling token i+1 fed this one
      if (i === 0) {
        prefillSeconds = (performance.now() - started) / 1000;
        decodeStart = performance.now();
      }
      if (options.stopIds?.has(id)) {
        stopReason = 'stop-id';
        break;
      }
      if (options.eosIds?.has(id)) {
        stopReason = 'end-of-text';
        break;
      }
      ids.push(id);
      text += decoder ? decoder.push(id) : '';
      // A stop string may span tokens: search the part that could contain a new match.
      const from = Math.max(0, released - Math.max(0, ...stops.map((x) => x.length)));
      const hits = stops.map((x) => text.indexOf(x, from)).filter((at) => at >= 0);
      let piece: string;
      if (hits.length > 0) {
        text = text.slice(0, Math.min(...hits));
        stopReason = 'stop-string';
        piece = text.slice(released);
        released = text.length;
      } else {
        const safe = text.length - heldBack(text, stops);
        piece = text.slice(released, safe);
        released = safe;
      }
      const seconds = (performance.now() - decodeStart) / 1000;
      onToken?.({ id, text: piece, index: i, tokensPerSecond: seconds > 0 ? i / seconds : 0 });
      if (stopReason === 'stop-string') break;
    }
    if (stopReason !== 'stop-string') {
      text += decoder ? decoder.flush() : '';
      if (text.length > released) onTail?.(text.slice(released));
    }
  } finally {
    // Ids sampled ahead of a stop or a cancellation are still being read back: let those reads
    // finish (the staging buffers must be unmapped), and record the ones whose step fed them.
    for (let k = i + 1; reads.length > 0; k++) {
      const id = await (reads.shift() as Promise<number>).catch(() => null);
      if (id !== null && k + 1 < sampled) session.fed(id);
    }
    // A step submitted ahead may still be running: its buffers go once it is done.
    if (sampled > 1) await ctx.device.queue.onSubmittedWorkDone();
    sampler.destroy();
  }
  const seconds = (performance.now() - decodeStart) / 1000;
  if (await session.model.gridDecodeFailed()) {
    // A grid decode step gave up at a barrier (app/kernels/layer-grid.ts): its tokens are wrong.
    // It never hangs, but the caller must turn the grid decode off (GpuContext.tuning.gridDecode = false).
    ctx.tuning = { ...ctx.tuning, gridDecode: false };
    throw new GpuError(
      'The one-dispatch-a-layer decode gave up waiting for workgroups this GPU did not run at once, so this generation is wrong. It is now off for this session; generate again.',
      'internal',
    );
  }
  return {
    ids,
    text,
    stopReason,
    tokensPerSecond: ids.length > 1 && seconds > 0 ? (ids.length - 1) / seconds : 0,
    prefillSeconds,
  };
}
