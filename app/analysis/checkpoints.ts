/**
 * State checkpoints and exact recomputation of trace windows (issue 18): a long trace keeps the
 * recurrent state (every layer's conv + SSM state) every `every` tokens instead of every token's
 * Δ, B and C, and recomputes any window of one layer on demand from the checkpoint before it.
 *
 * Exactness: `every` is a multiple of the model's analysisTokens, so a recompute from a checkpoint
 * prefills in chunks that start where the original prefill's chunks started; a window's rows are
 * then computed by the same dispatches over the same chunk positions as in the original (bit for
 * bit on the devices tested). Rows the original computed by single decode steps (a live trace)
 * are recomputed by a prefill: equal within fp32 rounding (see test/gpu/checkpoints.test.ts).
 *
 * Cost of a window [from, to) of layer l: (to − ck) tokens through layers 0..l only (the forward
 * stops after l: PlanOptions.lastLayer), ck = the checkpoint before `from`; the rows before the
 * chunk that holds `from` run untraced, so the recorder holds at most to − from + analysisTokens rows.
 */
import { allocateOrFail, formatBytes, GpuError } from '../gpu/errors.js';
import { readF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { stateBuffers, type SequenceState } from '../model/mixer.js';
import type { LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import { throwIfCancelled, type WorkProgress } from './cancel.js';
import { TRACE_WINDOW_MAX } from './trace-window.js';
import { mamba2StateNorms, TraceRecorder } from './recorder.js';
import { readALogs, type TraceTarget } from './trace-target.js';
import type { TraceWindowResult } from './types.js';

/** The default least number of tokens between checkpoints. */
export const CHECKPOINT_MIN_TOKENS = 1024;

/**
 * Tokens between checkpoints for a trace of `tokens` tokens: a multiple of model.analysisTokens (so a
 * recompute's prefill chunks start where the original's did), at least `min`, and large enough
 * that ceil(tokens / every) checkpoints of model.stateBytes each fit in `budgetBytes`.
 */
export function checkpointInterval(model: Pick<LanguageModel, 'analysisTokens' | 'stateBytes'>, tokens: number, budgetBytes: number, min = CHECKPOINT_MIN_TOKENS): number {
  if (!(Number.isInteger(tokens) && tokens >= 0)) throw new RangeError(`checkpointInterval: tokens must be a whole number ≥ 0, got ${tokens}`);
  if (!(Number.isInteger(min) && min >= 1)) throw new RangeError(`checkpointInterval: min must be a whole number ≥ 1, got ${min}`);
  const M = model.analysisTokens;
  const state = model.stateBytes;
  const fit = Math.floor(budgetBytes / state);
  if (!(fit >= 1)) {
    throw new RangeError(`checkpointInterval: a budget of ${formatBytes(Math.max(0, budgetBytes))} holds no checkpoint of this model's state (${formatBytes(state)})`);
  }
  // ceil(tokens / every) ≤ fit  ⇔  every ≥ tokens / fit.
  const every = Math.max(min, Math.ceil(tokens / fit), 1);
  return Math.ceil(every / M) * M;
}

/**
 * The recurrent state after every `every` tokens of one sequence (every layer's state buffers,
 * copied on the GPU), plus the empty state at 0 (not stored).
 */
export class StateCheckpoints {
  /** Token count → the state after that many tokens. */
  private readonly states = new Map<number, SequenceState>();
  /** Allocations whose out-of-memory scope checkMemory has not looked at yet. */
  private allocations: { tokens: number; outcome: Promise<GPUError | null> }[] = [];

  constructor(
    private readonly ctx: GpuContext,
    readonly model: LanguageModel,
    readonly every: number,
  ) {
    const M = model.analysisTokens;
    if (!(Number.isInteger(every) && every > 0 && every % M === 0)) {
      throw new RangeError(`StateCheckpoints: every must be a positive multiple of the model's chunk of ${M} tokens, got ${every}`);
    }
  }

  /**
   * Copies `session`'s whole recurrent state into the checkpoint for token count
   * session.position (the tokens its state has consumed, ids known or not), which must be a positive multiple of `every` (a checkpoint already
   * there is overwritten). Allocation failures are told by checkMemory() (prefillWithCheckpoints
   * and recomputeWindow call it).
   */
  capture(session: Session): void {
    if (session.model !== this.model) throw new Error('StateCheckpoints.capture: the session runs another model');
    const t = session.position;
    if (!(t > 0 && t % this.every === 0)) throw new RangeError(`StateCheckpoints.capture: ${t} tokens is not a positive multiple of ${this.every}`);
    const device = this.ctx.device;
    let state = this.states.get(t);
    if (!state) {
      // As TraceRecorder: the scope is popped right away, its outcome checked by checkMemory().
      device.pushErrorScope('out-of-memory');
      state = this.model.newState();
      this.allocations.push({ tokens: t, outcome: device.popErrorScope() });
      this.states.set(t, state);
    }
    const encoder = device.createCommandEncoder({ label: 'StateCheckpoints.capture' });
    session.copyStateTo(encoder, state);
    device.queue.submit([encoder.finish()]);
  }

  /** Captures when the session stands at a multiple of `every` (after a decode step); whether it did. */
  captureIfDue(session: Session): boolean {
    const t = session.position;
    if (t === 0 || t % this.every !== 0) return false;
    this.capture(session);
    return true;
  }

  /**
   * Throws a GpuError('out-of-memory') if a checkpoint's buffers could not be allocated (that
   * checkpoint is dropped and freed: recomputes start from an earlier one).
   */
  async checkMemory(): Promise<void> {
    const pending = this.allocations;
    this.allocations = [];
    let failed: { tokens: number; error: GPUError } | null = null;
    for (const a of pending) {
      const error = await a.outcome;
      if (error && !failed) failed = { tokens: a.tokens, error };
      if (error) {
        const state = this.states.get(a.tokens);
        this.states.delete(a.tokens);
        if (state) for (const b of stateBuffers(state)) b.destroy();
      }
    }
    if (failed) {
      throw new GpuError(`the state checkpoint at token ${failed.tokens}: out of GPU memory allocating ${formatBytes(this.model.stateBytes)} (${failed.error.message})`, 'out-of-memory');
    }
  }

  /** checkMemory(), then waits for the GPU to finish the work submitted so far. */
  async settle(): Promise<void> {
    await this.checkMemory();
    await this.ctx.device.queue.onSubmittedWorkDone();
  }

  /** The largest checkpointed token count ≤ t (0 = the empty state, always available). */
  before(t: number): number {
    let best = 0;
    for (const k of this.states.keys()) if (k <= t && k > best) best = k;
    return best;
  }

  /** The checkpointed token counts, ascending (0 left out). */
  get tokens(): number[] {
    return [...this.states.keys()].sort((a, b) => a - b);
  }

  /** The state after `t` tokens, or null for the empty state (t = 0). */
  private stateAt(t: number): SequenceState | null {
    if (t === 0) return null;
    const state = this.states.get(t);
    if (!state) throw new RangeError(`StateCheckpoints: no checkpoint at token ${t}`);
    return state;
  }

  /**
   * A new session standing at checkpoint `t` (its state a copy; `tokens` left empty — the
   * caller knows them). Destroy it after use.
   */
  async restore(t: number): Promise<Session> {
    const from = this.stateAt(t);
    const device = this.ctx.device;
    const state = await allocateOrFail(device, `a session from the checkpoint at token ${t}`, this.model.stateBytes, () => this.model.newState(), (s) => stateBuffers(s).forEach((b) => b.destroy()));
    if (from) {
      const target = stateBuffers(state);
      const encoder = device.createCommandEncoder({ label: 'StateCheckpoints.restore' });
      stateBuffers(from).forEach((b, i) => encoder.copyBufferToBuffer(b, 0, target[i] as GPUBuffer, 0, b.size));
      device.queue.submit([encoder.finish()]);
    }
    return new Session(this.ctx, this.model, state);
  }

  /** GPU bytes the checkpoints hold. */
  get bytes(): number {
    return this.states.size * this.model.stateBytes;
  }

  destroy(): void {
    for (const state of this.states.values()) for (const b of stateBuffers(state)) b.destroy();
    this.states.clear();
  }
}

export interface CheckpointedPrefillOptions {
  /** After each piece: tokens of `ids` prefilled so far, of ids.length. */
  onPiece?: WorkProgress;
  /** Checked between pieces: once aborted, fails with CancelledError. */
  signal?: AbortSignal;
  /** Prefills one piece instead of session.prefill(piece) (e.g. with taps or all logits). */
  prefill?: (piece: readonly number[]) => void | Promise<void>;
}

/**
 * Prefills `ids` into `session` in pieces that end at every multiple of checkpoints.every
 * (counting the session's tokens so far), capturing a checkpoint after each such piece; the last
 * piece may end elsewhere (no checkpoint). `signal` is checked before each piece: a cancelled
 * prefill leaves the session and checkpoints at the last piece done. With `every` a multiple of analysisTokens and the session
 * at a multiple of analysisTokens, the prefill's chunks are those of one plain prefill.
 */
export async function prefillWithCheckpoints(session: Session, ids: readonly number[], checkpoints: StateCheckpoints, options: CheckpointedPrefillOptions = {}): Promise<void> {
  const every = checkpoints.every;
  const prefill = options.prefill ?? ((piece: readonly number[]) => session.prefill(piece));
  let done = 0;
  while (done < ids.length) {
    throwIfCancelled(options.signal);
    const t = session.tokens.length;
    const mark = (Math.floor(t / every) + 1) * every;
    const end = Math.min(ids.length, done + (mark - t));
    await prefill(ids.slice(done, end));
    if (session.tokens.length !== t + end - done) throw new Error(`prefillWithCheckpoints: the piece's prefill fed ${session.tokens.length - t} tokens, not ${end - done}`);
    done = end;
    checkpoints.captureIfDue(session);
    await checkpoints.settle(); // progress and cancelling follow the GPU, not the queue
    options.onPiece?.(done, ids.length);
  }
}

/**
 * Mamba-2's SSM state of a layer, [H, P, N] (the mixer's second state buffer: app/arch/mamba2/mixer.ts
 * newState), as a float64 start for mamba2StateNorms.
 */
function ssmStateBuffer(session: Session, layer: number, floats: number): GPUBuffer {
  const buffers = session.layerState(layer);
  const ssm = buffers[buffers.length - 1];
  if (!ssm || ssm.size !== floats * 4) throw new Error(`recomputeWindow: layer ${layer}'s SSM state is not the [H, P, N] buffer expected`);
  return ssm;
}

/**
 * Δ, B and C of `layer` over tokens [from, to) of the sequence `ids` (all the trace's tokens),
 * recomputed from the checkpoint before `from`: a fresh session from that checkpoint prefills
 * ids[ck, c) untraced (c: the start of the analysisTokens chunk holding `from`), then ids[c, to) with a
 * TraceRecorder on that one layer, through layers 0..layer only. Mamba-2 also gets the per-head
 * state norms over the window, replayed in float64 (mamba2StateNorms) from the GPU state at c.
 * Everything is freed in finally.
 */
export async function recomputeWindow(
  ctx: GpuContext,
  target: TraceTarget,
  ids: readonly number[],
  checkpoints: StateCheckpoints,
  traceId: string,
  layer: number,
  from: number,
  to: number,
  signal?: AbortSignal,
): Promise<TraceWindowResult> {
  const model = target.model;
  if (checkpoints.model !== model) throw new Error('recomputeWindow: the checkpoints are of another model');
  const L = model.config.nLayer;
  const layout = Number.isInteger(layer) && layer >= 0 && layer < L ? model.traceLayout(layer) : null;
  if (!layout) throw new RangeError(`Trace ${traceId} has no layer ${layer} (the model's traceable layers: ${model.traceableLayers.join(', ')}).`);
  const T = ids.length;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) {
    throw new RangeError(`Tokens ${from}..${to} are not a window of trace ${traceId} (${T} tokens).`);
  }
  if (to - from > TRACE_WINDOW_MAX) throw new RangeError(`A window is at most ${TRACE_WINDOW_MAX} tokens; ${to - from} were asked for.`);
  throwIfCancelled(signal);
  await checkpoints.checkMemory();
  const M = model.analysisTokens;
  const ck = checkpoints.before(from);
  const start = ck + Math.floor((from - ck) / M) * M;
  const perHead = layout.deltaUnit === 'head';
  const aLog = perHead ? (await readALogs(ctx, target, [layer])).get(layer) : undefined;
  const session = await checkpoints.restore(ck);
  let recorder: TraceRecorder | null = null;
  let stateRead: Promise<Float32Array> | null = null;
  try {
    if (start > ck) session.prefill(ids.slice(ck, start), { lastLayer: layer });
    const c = model.config;
    if (perHead) {
      // Submitted before the traced prefill below, so it reads the state at `start` (queue order).
      stateRead = readF32(ctx.device, ssmStateBuffer(session, layer, c.nHeads * c.headDim * c.dState));
      stateRead.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    }
    recorder = new TraceRecorder(ctx, model, { layers: [layer], capacity: to - start });
    session.trace(recorder);
    session.prefill(ids.slice(start, to), { lastLayer: layer });
    const window = await recorder.read(perHead ? 0 : from - start, to - start);
    throwIfCancelled(signal);
    const skip = perHead ? from - start : 0;
    const rows = to - from;
    const H = layout.deltaWidth;
    const G = layout.bcWidth;
    const delta = window.delta[0] as Float32Array;
    const B = window.B[0] as Float32Array;
    const C = window.C[0] as Float32Array;
    const result: TraceWindowResult = {
      traceId,
      layer,
      from,
      to,
      delta: delta.slice(skip * layout.deltaWidth),
      B: B.slice(skip * G),
      C: C.slice(skip * G),
    };
    if (perHead && stateRead && aLog) {
      const state = Float64Array.from(await stateRead);
      const A = Float64Array.from(aLog, (v) => -Math.exp(v));
      const x = window.x?.[0];
      if (!x) throw new Error(`recomputeWindow: layer ${layer}'s rows have no x to replay the state norms from`);
      const { norms } = mamba2StateNorms(c, delta, A, B, x, to - start, state);
      result.stateNormByHead = norms.slice(skip * H, (skip + rows) * H);
    }
    return result;
  } finally {
    if (stateRead) await stateRead.catch(() => undefined); // its staging buffer is freed by readBuffer
    session.destroy();
    recorder?.destroy();
  }
}
