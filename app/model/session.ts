/**
 * A Session is one sequence being run: its state on the GPU (each layer's mixer's own), the
 * tokens so far, prefill over a prompt (in chunks: SessionOptions.prefillChunk), and one step per
 * generated token. The step's command list is built once and re-encoded every token: no
 * pipeline, bind group or buffer is created per token.
 */
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { Dispatch } from '../kernels/dispatch.js';
import { validateTokenIds } from '../kernels/embedding.js';
import { topK } from '../kernels/top-k.js';
import { gridDecodeWorkgroups, type GpuContext } from '../gpu/context.js';
import { stateBuffers, type ModelTaps, type SequenceState } from './mixer.js';
import { encodeSteps, submitSteps, type ForwardPlan, type LanguageModel, type StepTimestamps } from './model.js';

/**
 * Where a traced session writes each token's taps (app/analysis/recorder.ts implements it): rows
 * follow the session's tokens; buffers may grow, which bumps `generation`.
 */
export interface TraceSink {
  /** Rows written so far. */
  length: number;
  /** Bumped whenever the buffers are replaced (plans bound to the old ones must be rebuilt). */
  readonly generation: number;
  /** Makes room for `rows` more tokens after the current ones. */
  reserve(rows: number): void;
  /** Taps for the forward pass, indexed by layer. */
  taps(rowOf?: () => number): ModelTaps;
  /** How many top next tokens it keeps per row (0: none). */
  readonly topNextK: number;
  /** Where row `row`'s top next tokens go (bytes 2k·4); null when it keeps none. */
  topNextSlot(row: number): { buffer: GPUBuffer; offset: number } | null;
  /** The most rows a traced prefill writes at once (its chunks; default the model's analysisTokens). */
  readonly maxRows?: number;
  /**
   * Optional: takes the next one-token step as a row of summaries the fused decode computes
   * itself (ModelTaps.stepSummary, no per-layer taps), called instead of reserve(1); returns the
   * step's taps (the same object from step to step while its buffers stay) and where the step's
   * logits are copied for the sink's top next tokens (null: none), or null to trace the step with taps.
   */
  stepSummary?(): { taps: ModelTaps; logitsTo: { buffer: GPUBuffer; offset: number } | null } | null;
}

/** Copies every layer's state from one sequence state to another (same model): a mixer's state is its buffers' bytes. */
function copyState(encoder: GPUCommandEncoder, from: SequenceState, to: SequenceState): void {
  const target = stateBuffers(to);
  stateBuffers(from).forEach((b, i) => encoder.copyBufferToBuffer(b, 0, target[i] as GPUBuffer, 0, b.size));
}

export interface SessionOptions {
  /**
   * Tokens per chunk of this session's plain prefills (no taps, knockout, all-position logits or
   * overwrite): default the model's analysisTokens, so that an analysis and every recompute of
   * it chunk alike (the same float sums); a session that only generates passes the model's
   * maxTokens (the larger chunk: fewer, larger products). Traced prefills and the rest keep the
   * model's analysisTokens whatever this is.
   */
  prefillChunk?: number;
}

export class Session {
  private state: SequenceState;
  /** Tokens per chunk of a plain prefill (SessionOptions.prefillChunk). */
  readonly prefillChunk: number;
  /** Logits of the last position: [V]. */
  readonly logits: GPUBuffer;
  private stepPlan: ForwardPlan | null = null;
  /** The grid decode's workgroups when stepPlan was made (null: off). */
  private stepPlanGrid: number | null = null;
  /** The traced step plan, and the recorder generation it is bound to. */
  private tracedStep: { plan: ForwardPlan; generation: number } | null = null;
  /** The step plan writing a sink's step summaries (TraceSink.stepSummary), and the taps it is bound to. */
  private summaryStep: { plan: ForwardPlan; taps: ModelTaps } | null = null;
  private recorder: TraceSink | null = null;
  /** Traced prefill plans by chunk length (tracedPrefill), and the row their taps write from. */
  private readonly tracedPlans = new Map<number, { plan: ForwardPlan; generation: number; allLogits: GPUBuffer | undefined; lastLayer: number | undefined }>();
  private tracedRow = 0;
  /** With a recorder that keeps top next tokens: the top-k of this.logits into a scratch row, built once. */
  private topSelect: { dispatch: Dispatch; scratch: GPUBuffer; k: number } | null = null;
  private readonly idScratch = new Uint32Array(1);
  /** Steps stepFromGpu fed whose ids `fed` has not recorded yet. */
  private unknown = 0;
  /** Every token the state has consumed, in order. */
  readonly tokens: number[] = [];

  /**
   * Where a one-token step writes its GPU timestamps (the bench's app/bench/step-gpu.ts): asked once
   * a step; null, or a null answer, writes none.
   */
  stepTimestamps: (() => StepTimestamps | null) | null = null;

  constructor(
    private readonly ctx: GpuContext,
    readonly model: LanguageModel,
    state?: SequenceState,
    options: SessionOptions = {},
  ) {
    this.prefillChunk = options.prefillChunk ?? model.analysisTokens;
    if (!Number.isInteger(this.prefillChunk) || this.prefillChunk < 1 || this.prefillChunk > model.maxTokens) {
      throw new RangeError(`Session: prefillChunk must be an integer in 1..${model.maxTokens} (the model's maxTokens), got ${this.prefillChunk}`);
    }
    this.state = state ?? model.newState();
    this.logits = storageBuffer(ctx.device, 'Session.logits', model.config.vocabSize * 4);
  }

  private checkIds(ids: readonly number[]): void {
    validateTokenIds(ids, this.model.config.vocabSize);
  }

  /** Tokens this sequence can still take: what its attention blocks' KV caches have left (Infinity for a pure SSM). */
  get room(): number {
    return this.model.contextCapacity - this.position;
  }

  /** Refuses `n` more tokens that the KV caches cannot hold (their kernels would drop them). */
  private checkRoom(n: number, what: string): void {
    if (n > this.room) {
      const cap = this.model.contextCapacity;
      throw new RangeError(`Session.${what}: the model's attention layers keep ${cap.toLocaleString('en-US')} tokens in their KV cache; ${this.position.toLocaleString('en-US')} are in and ${n.toLocaleString('en-US')} more would not fit (start a new sequence)`);
    }
  }

  /**
   * Records traces of every token from now on (prefill and steps) into `recorder` (its rows
   * follow this session's tokens from the current position); null stops. Tracing off costs nothing.
   */
  trace(recorder: TraceSink | null): void {
    this.recorder = recorder;
    this.tracedStep?.plan.destroy();
    this.tracedStep = null;
    this.summaryStep?.plan.destroy();
    this.summaryStep = null;
    for (const { plan } of this.tracedPlans.values()) plan.destroy();
    this.tracedPlans.clear();
  }

  /** Appends: the top next tokens of this.logits into the recorder's row `row` (when it keeps them). */
  private encodeTopNext(encoder: GPUCommandEncoder, row: number): void {
    const k = this.recorder?.topNextK ?? 0;
    const slot = this.recorder?.topNextSlot(row);
    if (!k || !slot) return;
    if (!this.topSelect || this.topSelect.k !== k) {
      this.topSelect?.dispatch.destroy();
      this.topSelect?.scratch.destroy();
      const scratch = storageBuffer(this.ctx.device, 'Session.topNext', 2 * k * 4);
      this.topSelect = { dispatch: topK(this.ctx, { rows: 1, vocab: this.model.config.vocabSize, k }, { logits: this.logits, out: scratch }, 'Session.topNext'), scratch, k };
    }
    const pass = encoder.beginComputePass({ label: 'Session.topNext.pass' });
    this.topSelect.dispatch.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(this.topSelect.scratch, 0, slot.buffer, slot.offset, 2 * k * 4);
  }

  /**
   * Runs the prompt through the model, continuing from the current state. Logits of the last
   * position land in `this.logits`; with `allLogits`, every position's row goes to that buffer
   * instead ([ids.length, V]). `taps` receive the per-layer traces, rows from `taps.row0`.
   */
  prefill(
    ids: readonly number[],
    options: {
      allLogits?: GPUBuffer;
      taps?: Omit<ModelTaps, 'row0'> & { row0?: number };
      /** Δ := 0 for ids[token] in these layers (null: all); see Knockout in model.ts. */
      knockout?: { token: number; layers: readonly number[] | null };
      /** A traced prefill's chunk that is not its last: no top next tokens after it (internal). */
      skipTopNext?: boolean;
      /**
       * Run only the layers up to this one (PlanOptions.lastLayer): no logits, and the later
       * layers' state stays behind — for a throwaway session that recomputes one layer's taps.
       */
      lastLayer?: number;
      /** ids[token]'s mixer output in `layer` := `source` ([D]); see PlanOptions.overwriteMixerOutput. */
      overwriteMixerOutput?: { layer: number; token: number; source: GPUBuffer };
    } = {},
  ): void {
    if (ids.length === 0) return;
    this.checkIds(ids);
    this.checkSettled('prefill');
    // A traced prefill's chunks come back here with their taps: checked once, at the top.
    if (!options.taps || !this.recorder) this.checkRoom(ids.length, 'prefill');
    if (this.recorder && !options.taps) {
      this.tracedPrefill(this.recorder, ids, options);
      return;
    }
    const { device } = this.ctx;
    const knockout = options.knockout;
    const plain = !options.taps && !options.allLogits && !knockout && !options.overwriteMixerOutput && options.lastLayer === undefined;
    const max = plain ? this.prefillChunk : this.model.analysisTokens;
    const row0 = options.taps?.row0 ?? this.tokens.length;
    if (knockout && !(Number.isInteger(knockout.token) && knockout.token >= 0 && knockout.token < ids.length)) {
      throw new RangeError(`knockout: no token ${knockout.token} in a prompt of ${ids.length}`);
    }
    // A plan with neither all-position logits nor a knockout serves every chunk of its length in
    // this call, its taps bound through rowOf (the row is read at encode time): a long traced (or
    // lastLayer) prefill builds one plan per chunk length, not one per chunk (10–20 ms of CPU each).
    const reusable = new Map<number, ForwardPlan>();
    let row = row0;
    try {
      for (let start = 0; start < ids.length; start += max) {
        const chunk = ids.slice(start, start + max);
        device.queue.writeBuffer(this.model.idsBuffer, 0, Uint32Array.from(chunk));
        const taps = options.taps ? { ...options.taps, row0: row0 + start } : undefined;
        const knocked = knockout && knockout.token >= start && knockout.token < start + chunk.length;
        const overwrite = options.overwriteMixerOutput;
        const overwritten = overwrite && overwrite.token >= start && overwrite.token < start + chunk.length ? { layer: overwrite.layer, row: overwrite.token - start, source: overwrite.source } : undefined;
        if (!taps && !options.allLogits && !knocked && !overwritten && options.lastLayer === undefined) {
          // The common case: the model's cached plan for this many tokens, on its work state.
          const cached = this.model.cachedPlan(chunk.length);
          submitSteps(device, 'Session.prefill', cached.plan.steps, {
            before: (encoder) => copyState(encoder, this.state, cached.state),
            after: (encoder) => {
              copyState(encoder, cached.state, this.state);
              encoder.copyBufferToBuffer(cached.logits, 0, this.logits, 0, this.logits.size);
            },
          });
        } else {
          const reuse = !options.allLogits && !knocked && !overwritten && !options.taps?.rowOf;
          let plan = reuse ? reusable.get(chunk.length) : undefined;
          if (!plan) {
            plan = this.model.plan(chunk.length, this.state, this.logits, {
              ...(taps ? { taps: reuse ? { ...taps, rowOf: () => row } : taps } : {}),
              ...(options.allLogits ? { allLogits: { buffer: options.allLogits, row0: start } } : {}),
              ...(knocked ? { knockout: { row: knockout.token - start, layers: knockout.layers } } : {}),
              ...(options.lastLayer !== undefined ? { lastLayer: options.lastLayer } : {}),
              ...(overwritten ? { overwriteMixerOutput: overwritten } : {}),
            });
            if (reuse) reusable.set(chunk.length, plan);
          }
          row = row0 + start;
          // A traced prefill's last chunk leaves the last token's logits: its top next tokens.
          const topNext = this.recorder && taps && !options.allLogits && !options.skipTopNext && start + max >= ids.length;
          submitSteps(device, 'Session.prefill', plan.steps, topNext ? { after: (encoder) => this.encodeTopNext(encoder, row0 + ids.length - 1) } : {});
          if (!reuse) plan.destroy();
        }
      }
    } finally {
      for (const plan of reusable.values()) plan.destroy();
    }
    this.tokens.push(...ids);
  }

  /**
   * A traced prefill, chunk by chunk, each reserved before it runs: a sink may hand its rows on
   * (and start over) between chunks, or checkpoint the state there (app/analysis/long-trace.ts).
   * The plans are kept across calls, one per chunk length, and bound to the recorder's buffers
   * (rebuilt when they grow) and to this call's all-position logits buffer: their taps read the
   * row at encode time. A long trace's thousand chunks build one plan, not a thousand
   * (10–20 ms of CPU each on a real GPU's host).
   */
  private tracedPrefill(recorder: TraceSink, ids: readonly number[], options: { allLogits?: GPUBuffer; knockout?: { token: number; layers: readonly number[] | null }; lastLayer?: number }): void {
    const max = Math.min(this.model.analysisTokens, recorder.maxRows ?? Infinity);
    if (options.allLogits && ids.length > max) throw new RangeError(`Session.prefill: all-position logits of a traced prefill come a chunk (${max} tokens) at a time`);
    if (options.knockout) {
      // Rare (a knockout of a traced session): the general path, one call per chunk.
      for (let start = 0; start < ids.length; start += max) {
        const chunk = ids.slice(start, start + max);
        recorder.reserve(chunk.length);
        const row0 = recorder.length;
        recorder.length += chunk.length;
        this.prefill(chunk, { ...options, taps: { ...recorder.taps(), row0 }, ...(start + max < ids.length ? { skipTopNext: true } : {}) });
      }
      return;
    }
    const { device } = this.ctx;
    for (let start = 0; start < ids.length; start += max) {
      const chunk = ids.slice(start, start + max);
      recorder.reserve(chunk.length);
      this.tracedRow = recorder.length;
      recorder.length += chunk.length;
      const cached = this.tracedPlan(recorder, chunk.length, options);
      device.queue.writeBuffer(this.model.idsBuffer, 0, Uint32Array.from(chunk));
      // The traced prefill's last chunk leaves the last token's logits: its top next tokens.
      const topNext = !options.allLogits && start + max >= ids.length;
      const row = this.tracedRow + chunk.length - 1;
      submitSteps(device, 'Session.prefill', cached.plan.steps, topNext ? { after: (encoder) => this.encodeTopNext(encoder, row) } : {});
      this.tokens.push(...chunk);
    }
  }

  /** The traced prefill's plan for chunks of `tokens` tokens (kept, rebuilt when the recorder's buffers or the options change). */
  private tracedPlan(recorder: TraceSink, tokens: number, options: { allLogits?: GPUBuffer; lastLayer?: number }) {
    let cached = this.tracedPlans.get(tokens);
    if (!cached || cached.generation !== recorder.generation || cached.allLogits !== options.allLogits || cached.lastLayer !== options.lastLayer) {
      cached?.plan.destroy();
      const plan = this.model.plan(tokens, this.state, this.logits, {
        taps: recorder.taps(() => this.tracedRow),
        ...(options.allLogits ? { allLogits: { buffer: options.allLogits, row0: 0 } } : {}),
        ...(options.lastLayer !== undefined ? { lastLayer: options.lastLayer } : {}),
      });
      cached = { plan, generation: recorder.generation, allLogits: options.allLogits, lastLayer: options.lastLayer };
      this.tracedPlans.set(tokens, cached);
    }
    return cached;
  }

  /**
   * Builds now the plan a traced prefill of chunks of `tokens` tokens will use (10–20 ms of CPU
   * or more on a large model: better before a generation than in the middle of it).
   */
  prepareTracedPrefill(tokens: number, options: { allLogits?: GPUBuffer } = {}): void {
    if (!this.recorder) throw new Error('Session.prepareTracedPrefill: the session is not traced');
    this.tracedPlan(this.recorder, tokens, options);
  }

  /**
   * Feeds one token (the last one sampled): one command buffer, nothing allocated. `then` appends
   * more work to the same command buffer (the sampler, trace copies).
   */
  step(id: number, then?: (encoder: GPUCommandEncoder) => void): void {
    this.checkIds([id]);
    this.checkSettled('step');
    this.checkRoom(1, 'step');
    this.idScratch[0] = id;
    this.ctx.device.queue.writeBuffer(this.model.idsBuffer, 0, this.idScratch);
    this.encodeStep('Session.step', then);
    this.tokens.push(id);
  }

  /**
   * One step over the id in the model's ids buffer: the traced plan (its taps write the recorder's
   * next row, then the top next tokens) while tracing, else the decode plan; then `then`; submitted.
   */
  private encodeStep(label: string, then?: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.ctx.device.createCommandEncoder({ label });
    this.encodeStepInto(encoder, then);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** One step (its plan chosen as encodeStep says) and `then` appended to `encoder`. */
  private encodeStepInto(encoder: GPUCommandEncoder, then?: (encoder: GPUCommandEncoder) => void): void {
    let plan: ForwardPlan;
    const recorder = this.recorder;
    const summarized = recorder?.stepSummary?.() ?? null;
    if (summarized) {
      // The fused decode computes the step's summaries itself (one dispatch and one copy more).
      if (this.summaryStep?.taps !== summarized.taps) {
        this.summaryStep?.plan.destroy();
        this.summaryStep = { plan: this.model.plan(1, this.state, this.logits, { taps: summarized.taps }), taps: summarized.taps };
      }
      plan = this.summaryStep.plan;
    } else if (recorder) {
      recorder.reserve(1);
      if (!this.tracedStep || this.tracedStep.generation !== recorder.generation) {
        // Built once, and again only when the trace buffers grow (capacity doubles).
        this.tracedStep?.plan.destroy();
        // The fused decode writes the taps too (model.plan takes it where every tap kind is one the
        // mixers' fused kernels write); the general path on a software adapter, as decodePlan.
        const taps = recorder.taps(() => recorder.length - 1);
        this.tracedStep = { plan: this.model.plan(1, this.state, this.logits, { taps, ...(this.ctx.adapter.software ? { unfused: true } : {}) }), generation: recorder.generation };
      }
      recorder.length += 1;
      plan = this.tracedStep.plan;
    } else {
      plan = this.decodePlan();
    }
    encodeSteps(encoder, 'Session.step', plan.steps, this.stepTimestamps?.() ?? undefined);
    if (summarized) {
      if (summarized.logitsTo) encoder.copyBufferToBuffer(this.logits, 0, summarized.logitsTo.buffer, summarized.logitsTo.offset, this.logits.size);
    } else if (recorder) this.encodeTopNext(encoder, recorder.length - 1);
    then?.(encoder);
  }

  /**
   * The untraced one-token plan: the fused decode kernels (planDecode) on a GPU; the general path
   * on a CPU implementation of WebGPU (adapter.software: SwiftShader in
   * Chromium without a GPU). There the fused kernels' per-workgroup prologue (the norm recomputed
   * by every workgroup, a dozen barriers) costs milliseconds: measured in Chromium on SwiftShader,
   * shakespeare-byte's fused norm + in_proj + conv took 340 ms a layer, and the untraced decode ran
   * at 0.6 tokens/s against 4.3 for the traced one (issue 15, defect 1).
   */
  private decodePlan(): ForwardPlan {
    const grid = gridDecodeWorkgroups(this.ctx);
    if (this.stepPlan && this.stepPlanGrid !== grid) {
      // The grid decode was turned off, on or resized since the plan was made (generate.ts turns it off after a grid step gave up).
      this.stepPlan.destroy();
      this.stepPlan = null;
    }
    this.stepPlanGrid = grid;
    this.stepPlan ??= this.model.plan(1, this.state, this.logits, this.ctx.adapter.software ? { unfused: true } : {});
    return this.stepPlan;
  }

  /** Whether a TraceRecorder is on (its rows follow the tokens the state consumes). */
  get tracing(): boolean {
    return this.recorder !== null;
  }

  /**
   * Tokens the state has consumed: `tokens`, and the ones stepFromGpu fed whose ids are not
   * known here yet (`fed` has not been called for them).
   */
  get position(): number {
    return this.tokens.length + this.unknown;
  }

  /** Feeding a known id, or a prompt, while ids fed from the GPU are still unknown would put `tokens` out of order. */
  private checkSettled(what: string): void {
    if (this.unknown > 0) throw new Error(`Session.${what}: ${this.unknown} token(s) fed from the GPU are not recorded yet (call fed() for each first)`);
  }

  /**
   * Feeds the id that earlier GPU work left in the model's ids buffer (the sampler copies its
   * choice there), so the step can be submitted before the id is read back: decode pipelining.
   * Call `fed(id)` once the id is known, in the order of the steps. While tracing too: the
   * recorder's row is the step's position (rows run ahead of `tokens` until the ids are known).
   */
  stepFromGpu(then?: (encoder: GPUCommandEncoder) => void): void {
    this.stepsFromGpu(1, then);
  }

  /**
   * `count` steps of stepFromGpu, each fed the id the work before it left in the ids buffer (`then`
   * after step k, e.g. the sampler that writes it, gets k), in ONE command buffer where the session
   * is not tracing: one submit for the batch, so the queue's gap between submits is paid once.
   * Tracing (the recorder may rebuild its plan between steps), each step is submitted on its own.
   */
  stepsFromGpu(count: number, then?: (encoder: GPUCommandEncoder, k: number) => void): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`Session.stepsFromGpu: count must be an integer ≥ 1, got ${count}`);
    this.checkRoom(count, 'stepsFromGpu');
    if (this.recorder) {
      for (let k = 0; k < count; k++) {
        this.encodeStep('Session.stepFromGpu', then && ((encoder) => then(encoder, k)));
        this.unknown++;
      }
      return;
    }
    const encoder = this.ctx.device.createCommandEncoder({ label: 'Session.stepsFromGpu' });
    for (let k = 0; k < count; k++) {
      this.encodeStepInto(encoder, then && ((e) => then(e, k)));
      this.unknown++;
    }
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** Records an id that stepFromGpu fed, once it is known. */
  fed(id: number): void {
    if (this.unknown === 0) throw new Error('Session.fed: no step fed from the GPU is waiting for its id');
    this.unknown--;
    this.tokens.push(id);
  }

  /** Reads the last position's logits (a sync point: for tests and inspection, not the decode loop). */
  readLogits(): Promise<Float32Array> {
    return readF32(this.ctx.device, this.logits, this.model.config.vocabSize);
  }

  /** Back to an empty sequence (zeroed state), keeping every buffer. */
  reset(): void {
    const encoder = this.ctx.device.createCommandEncoder({ label: 'Session.reset' });
    for (const b of stateBuffers(this.state)) encoder.clearBuffer(b);
    this.ctx.device.queue.submit([encoder.finish()]);
    this.tokens.length = 0;
    this.unknown = 0;
  }

  /** Appends a copy of this session's whole state (every layer's buffers) into `to` (a state of the same model). */
  copyStateTo(encoder: GPUCommandEncoder, to: SequenceState): void {
    copyState(encoder, this.state, to);
  }

  /** Layer `layer`'s state buffers (the mixer's own: for reading a state back, e.g. Mamba-2's SSM state [H, P, N]). */
  layerState(layer: number): readonly GPUBuffer[] {
    const buffers = this.state.layers[layer];
    if (!buffers) throw new RangeError(`Session: no layer ${layer} (the model has ${this.state.layers.length})`);
    return buffers;
  }

  /** A second session continuing from this one's state (the state is copied on the GPU). */
  fork(): Session {
    this.checkSettled('fork');
    const copy = this.model.newState();
    const encoder = this.ctx.device.createCommandEncoder({ label: 'Session.fork' });
    copyState(encoder, this.state, copy);
    this.ctx.device.queue.submit([encoder.finish()]);
    const forked = new Session(this.ctx, this.model, copy, { prefillChunk: this.prefillChunk });
    forked.tokens.push(...this.tokens);
    return forked;
  }

  destroy(): void {
    this.topSelect?.dispatch.destroy();
    this.topSelect?.scratch.destroy();
    this.stepPlan?.destroy();
    this.tracedStep?.plan.destroy();
    this.summaryStep?.plan.destroy();
    for (const { plan } of this.tracedPlans.values()) plan.destroy();
    for (const b of [...stateBuffers(this.state), this.logits]) b.destroy();
  }
}
