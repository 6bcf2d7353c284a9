/**
 * Many short forwards ("cells" of patching and attribution) encoded into shared command buffers.
 * Each run continues a given sequence state over its ids, chunk by chunk as Session.prefill does
 * (chunks of the model's analysisTokens, the same plans: `LanguageModel.plan` with the same options,
 * so its results are bit for bit Session.prefill's), but its ids are copied into the model's ids
 * buffer inside the command buffer (from a staging buffer written before the submit), so that
 * runs, state copies and read-back copies of many cells queue up in one encoder and go in one
 * submit once `budgetTokens` token positions (or `maxRuns` runs) are encoded.
 *
 * Plans: a run's first chunk may carry options (a knockout, an overwritten mixer output at row 0):
 * such a plan is built for that run and destroyed after its submit. The others — no options —
 * are kept by (binding, token count) and reused by every later run of that count on that state
 * (the L cells of one token in state patching, the one-token steps of the prefixes, every full
 * chunk); the least recently used beyond PLANS_KEPT go after the next submit.
 */
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { stateBuffers, type SequenceState } from '../model/mixer.js';
import { encodeSteps, type ForwardPlan, type LanguageModel, type PlanOptions } from '../model/model.js';

/** Token positions encoded per submit (about a few ms of GPU work on small models, bounded CPU memory). */
export const BATCH_TOKENS = 4096;
/** Runs per submit at most. */
export const BATCH_RUNS = 256;
/** Kept plans (binding, token count) beyond which the least recently used are dropped. */
const PLANS_KEPT = 8;

/** A state and the logits buffer of its last position: what a plan is bound to. */
export interface Binding {
  /** Names the pair (plans are kept per binding). */
  key: string;
  state: SequenceState;
  logits: GPUBuffer;
}

export class ForwardBatch {
  private current: GPUCommandEncoder | null = null;
  private readonly staging: GPUBuffer;
  private readonly capacity: number;
  private idsUsed = 0;
  private tokens = 0;
  private runs = 0;
  private readonly kept = new Map<string, ForwardPlan>();
  private transient: ForwardPlan[] = [];
  /** Submits so far (for tests and measurements). */
  submits = 0;

  constructor(
    private readonly ctx: GpuContext,
    private readonly model: LanguageModel,
    private readonly label: string,
    private readonly budgetTokens = BATCH_TOKENS,
    private readonly maxRuns = BATCH_RUNS,
  ) {
    this.capacity = Math.max(budgetTokens, model.analysisTokens);
    this.staging = storageBuffer(ctx.device, `${label}.ids`, this.capacity * 4);
  }

  /** The open command encoder (made on first use after a submit). */
  get encoder(): GPUCommandEncoder {
    this.current ??= this.ctx.device.createCommandEncoder({ label: this.label });
    return this.current;
  }

  /** Copies every buffer of `from` into `to` (in the encoder). */
  copyState(from: SequenceState, to: SequenceState): void {
    const target = stateBuffers(to);
    stateBuffers(from).forEach((b, i) => this.encoder.copyBufferToBuffer(b, 0, target[i] as GPUBuffer, 0, b.size));
  }

  /** Copies layer `layer`'s buffers of `from` into `to`. */
  copyLayer(from: SequenceState, to: SequenceState, layer: number): void {
    const target = to.layers[layer] as GPUBuffer[];
    (from.layers[layer] as GPUBuffer[]).forEach((b, i) => this.encoder.copyBufferToBuffer(b, 0, target[i] as GPUBuffer, 0, b.size));
  }

  private plan(binding: Binding, tokens: number, options: PlanOptions | undefined): ForwardPlan {
    if (options) {
      const plan = this.model.plan(tokens, binding.state, binding.logits, options);
      this.transient.push(plan);
      return plan;
    }
    const key = `${binding.key}:${tokens}`;
    let plan = this.kept.get(key);
    if (plan) this.kept.delete(key);
    else {
      plan = this.model.plan(tokens, binding.state, binding.logits);
      if (this.kept.size >= PLANS_KEPT) {
        const [oldest, evicted] = this.kept.entries().next().value as [string, ForwardPlan];
        this.kept.delete(oldest);
        this.transient.push(evicted); // encoded commands may still use it: destroyed after the submit
      }
    }
    this.kept.set(key, plan);
    return plan;
  }

  /**
   * Encodes the forward of `ids` continuing `binding`'s state (the last position's logits in its
   * logits buffer); `first`: the first chunk's plan options (rows counted in that chunk).
   */
  run(binding: Binding, ids: readonly number[], first?: PlanOptions): void {
    const max = this.model.analysisTokens;
    for (let start = 0; start < ids.length; start += max) {
      const chunk = ids.slice(start, start + max);
      if (this.idsUsed + chunk.length > this.capacity) this.submit();
      this.ctx.device.queue.writeBuffer(this.staging, this.idsUsed * 4, Uint32Array.from(chunk));
      const plan = this.plan(binding, chunk.length, start === 0 ? first : undefined);
      const encoder = this.encoder;
      encoder.copyBufferToBuffer(this.staging, this.idsUsed * 4, this.model.idsBuffer, 0, chunk.length * 4);
      encodeSteps(encoder, this.label, plan.steps);
      this.idsUsed += chunk.length;
      this.tokens += chunk.length;
    }
    this.runs++;
  }

  /** Whether the encoded work reached the budget (the caller submits at a cell's end). */
  get full(): boolean {
    return this.tokens >= this.budgetTokens || this.runs >= this.maxRuns;
  }

  /** Submits what is encoded and frees the plans made for it. */
  submit(): void {
    if (this.current) {
      this.ctx.device.queue.submit([this.current.finish()]);
      this.submits++;
    }
    this.current = null;
    for (const plan of this.transient) plan.destroy();
    this.transient = [];
    this.idsUsed = 0;
    this.tokens = 0;
    this.runs = 0;
  }

  destroy(): void {
    this.submit();
    for (const plan of this.kept.values()) plan.destroy();
    this.kept.clear();
    this.staging.destroy();
  }
}

/** A fresh state and logits buffer, bound under `key`; `destroy` frees both. */
export function newBinding(ctx: GpuContext, model: LanguageModel, key: string): Binding & { destroy(): void } {
  const state = model.newState();
  const logits = storageBuffer(ctx.device, `${key}.logits`, model.config.vocabSize * 4);
  return {
    key,
    state,
    logits,
    destroy() {
      for (const b of stateBuffers(state)) b.destroy();
      logits.destroy();
    },
  };
}
