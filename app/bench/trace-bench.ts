/**
 * The long-trace bench (issue 18, `bench --trace N`): for one model, a prompt of N random tokens
 * traced with detail 'windows' (GPU summaries + state checkpoints), then
 *   tokens       N
 *   gpu_bytes    the GPU memory the trace took at its peak (the tap ring, the summaries, the
 *                checkpoints, the top next tokens) and what stays kept (the checkpoints)
 *   heap_bytes   the JS memory the kept trace holds (its typed arrays: storedTraceBytes), and the
 *                process's heap + array buffers growth over the trace (after a collection when
 *                node runs with --expose-gc)
 *   window_ms    a 4,096-token window of one layer recomputed from the checkpoints: median and
 *                worst of windows at spread positions of the middle and the last layer
 *   live_overhead 1 − (decode tok/s with the live trace) / (decode tok/s without), both through
 *                the app's generate loop in the same run; for the default detail and for 'windows'
 *                (as the app runs them: live_mode says how), and for 'windows' with a trail
 */
import type { GpuContext } from '../gpu/context.js';
import { generate } from '../model/generate.js';
import type { LanguageModel } from '../model/model.js';
import type { LoadedWeights } from '../model/loader.js';
import { Session } from '../model/session.js';
import { timeStepCpu } from './step-cpu.js';
import { seededRandom } from '../random.js';
import { traceLongPrompt, type LongTraceSink } from '../analysis/long-trace.js';
import { startLiveTrace, type LiveTrace } from '../analysis/trace.js';
import { storedTraceBytes } from '../analysis/trace-store.js';
import { median } from './median.js';

export interface TraceBenchResult {
  tokens: number;
  /** Peak GPU bytes while tracing, and the kept trace's (its checkpoints). */
  gpu_bytes: number;
  gpu_bytes_kept: number;
  /** The kept trace's typed arrays (JS), and the process's measured growth (heap + array buffers). */
  heap_bytes: number;
  heap_growth_bytes: number;
  trace_seconds: number;
  checkpoint_every: number;
  /** 4,096-token windows of one layer, recomputed: median and worst, and how many were timed. */
  window_ms: number;
  window_ms_max: number;
  windows_timed: number;
  /** 1 − traced/untraced decode rate, for the default detail ('auto') and for 'windows' (the app's defaults), and for 'windows' with a trail. */
  live_overhead: number;
  live_overhead_windows: number;
  live_overhead_windows_trail: number;
  /** How the live trace made its rows in 'auto' and 'windows' (LiveTrace.mode). */
  live_mode: LiveTrace['mode'];
  live_mode_windows: LiveTrace['mode'];
  /** With --trail-piece: the windows detail's overhead per trail piece (tokens). */
  live_overhead_windows_by_trail_piece?: Record<string, number>;
  decode_tok_s: number;
  decode_traced_tok_s: number;
  decode_traced_windows_tok_s: number;
  decode_traced_windows_trail_tok_s: number;
  /** The default detail traced in the generating session's own steps (no trail), for comparison. */
  decode_traced_in_place_tok_s: number;
  /** CPU time per decode step spent encoding and submitting it (ms): untraced (also with a trail), traced in place. */
  step_cpu_ms: number;
  step_cpu_ms_traced_in_place: number;
  /** The same for the 'windows' detail as the app runs it (with step summaries: the generating session's steps). */
  step_cpu_ms_windows: number;
}


export async function benchTrace(
  ctx: GpuContext,
  model: LanguageModel,
  weights: LoadedWeights,
  tokens: number,
  options: { decodeTokens: number; repeats: number; window?: number; /** More trail pieces to time the windows detail with (tokens each). */ trailPieces?: number[]; /** The process's JS memory now (heap + array buffers), after a collection where it can. */ memory?: () => number },
  log: (line: string) => void,
): Promise<TraceBenchResult> {
  const target = { model, weights, tokenizer: null };
  const V = model.config.vocabSize;
  const random = seededRandom(11);
  const ids = Array.from({ length: tokens }, () => Math.floor(random() * V));
  const memory = options.memory ?? (() => 0);
  const before = memory();
  let peak = 0;
  let sink: LongTraceSink | null = null;
  const started = performance.now();
  const stored = await traceLongPrompt(ctx, target, ids, {
    traceId: 'bench',
    modelId: 'bench',
    onSink: (s) => (sink = s),
    onProgress: () => {
      peak = Math.max(peak, sink?.bytes ?? 0);
    },
  });
  await ctx.device.queue.onSubmittedWorkDone();
  const traceSeconds = (performance.now() - started) / 1000;
  const heapGrowth = memory() - before;
  const heap = storedTraceBytes(stored);
  const kept = stored.gpuBytes ?? 0;
  log(`trace of ${tokens} tokens: ${traceSeconds.toFixed(2)} s; GPU kept ${(kept / 2 ** 20).toFixed(1)} MiB; JS ${(heap / 2 ** 20).toFixed(1)} MiB (process growth ${(heapGrowth / 2 ** 20).toFixed(1)} MiB)`);

  // Windows: spread over the trace, of the middle and the last layer.
  const W = Math.min(options.window ?? 4096, tokens);
  const layers = [stored.result.layers[Math.floor(stored.result.layers.length / 2)] as number, stored.result.layers.at(-1) as number];
  const times: number[] = [];
  const starts = [0, 0.25, 0.5, 0.77, 1].map((f) => Math.min(tokens - W, Math.floor(f * (tokens - W))));
  for (const layer of layers) {
    for (const from of starts) {
      await ctx.device.queue.onSubmittedWorkDone();
      const t = performance.now();
      await stored.recompute!({ layer, from, to: from + W });
      times.push(performance.now() - t);
    }
  }
  stored.release?.();
  log(`window of ${W} tokens: median ${median(times).toFixed(1)} ms, worst ${Math.max(...times).toFixed(1)} ms (${times.length} windows)`);

  // Live trace overhead: the same generate loop with and without it. Each run also sums the CPU
  // time spent encoding and submitting its steps (Session.stepFromGpu), per token; 'in-place'
  // traces the generating session's own steps (the default detail) instead of a trail session.
  // Modes: the app's defaults for 'auto' and 'windows' (on a GPU, 'windows' summarises each step
  // in the fused decode where the model can); 'windows-trail' and 'windows@N' (N-token pieces)
  // force the trail; 'in-place' traces the default detail in the generating session's steps with taps.
  const decodeOnce = async (trace: 'none' | 'auto' | 'windows' | 'windows-trail' | 'in-place' | `windows@${number}`) => {
    const piece = trace.startsWith('windows@') ? Number(trace.slice('windows@'.length)) : undefined;
    const session = new Session(ctx, model);
    const prompt = Array.from({ length: 16 }, () => Math.floor(random() * V));
    const detail = trace === 'in-place' ? 'auto' : trace === 'none' || trace === 'auto' ? trace : 'windows';
    const trail = trace === 'in-place' ? false : trace === 'windows-trail' || piece !== undefined ? true : undefined;
    const live =
      detail === 'none'
        ? null
        : await startLiveTrace(ctx, target, session, prompt.length + options.decodeTokens + 1, {
            traceId: 'live',
            modelId: 'bench',
            onRows: () => undefined,
            detail,
            ...(trail !== undefined ? { trail } : {}),
            ...(trail === false ? { stepSummaries: false } : {}),
            ...(piece !== undefined ? { trailPiece: piece } : {}),
          });
    if (live) liveModes.set(trace, live.mode);
    const cpu = timeStepCpu(session);
    try {
      const run = await generate(ctx, session, prompt, { maxTokens: options.decodeTokens + 1, temperature: 0 }, () => live?.flushSoon());
      await live?.finish().then((t) => t?.release?.());
      return { rate: run.tokensPerSecond, encodeMs: cpu.msPerStep() };
    } finally {
      await live?.stop();
      session.destroy();
    }
  };
  // The modes take turns, run after run (the first round a warm-up), so a drift of the machine
  // touches them alike; each one's median.
  const liveModes = new Map<string, LiveTrace['mode']>();
  const pieces = (options.trailPieces ?? []).map((p) => `windows@${p}` as const);
  const modes = ['none', 'auto', 'windows', 'windows-trail', 'in-place', ...pieces] as const;
  const runs = new Map<string, { rates: number[]; encodeMs: number[] }>(modes.map((m) => [m, { rates: [] as number[], encodeMs: [] as number[] }]));
  for (let r = 0; r < options.repeats + 1; r++) {
    for (const mode of modes) {
      const { rate, encodeMs } = await decodeOnce(mode);
      const into = runs.get(mode) as { rates: number[]; encodeMs: number[] };
      if (r > 0) {
        into.rates.push(rate);
        into.encodeMs.push(encodeMs);
      }
    }
  }
  const decodeRate = (mode: string) => {
    const { rates, encodeMs } = runs.get(mode) as { rates: number[]; encodeMs: number[] };
    return { rate: median(rates), encodeMs: median(encodeMs) };
  };
  const plain = decodeRate('none');
  const traced = decodeRate('auto');
  const windows = decodeRate('windows');
  const windowsTrail = decodeRate('windows-trail');
  const inPlace = decodeRate('in-place');
  const byPiece = Object.fromEntries((options.trailPieces ?? []).map((p) => [String(p), 1 - decodeRate(`windows@${p}`).rate / plain.rate]));
  log(
    `decode ${plain.rate.toFixed(1)} tok/s; with the live trace ${traced.rate.toFixed(1)} (auto: ${liveModes.get('auto')}), ${windows.rate.toFixed(1)} (windows: ${liveModes.get('windows')}), ${windowsTrail.rate.toFixed(1)} (windows: trail), ${inPlace.rate.toFixed(1)} (auto, traced in place with taps)` +
      Object.entries(byPiece).map(([p, o]) => `, windows with ${p}-token trail pieces: overhead ${(100 * o).toFixed(1)} %`).join('') + '; ' +
      `CPU per step ${plain.encodeMs.toFixed(3)} ms untraced, ${inPlace.encodeMs.toFixed(3)} traced in place with taps, ${windows.encodeMs.toFixed(3)} with windows`,
  );
  return {
    tokens,
    gpu_bytes: Math.max(peak, kept),
    gpu_bytes_kept: kept,
    heap_bytes: heap,
    heap_growth_bytes: heapGrowth,
    trace_seconds: traceSeconds,
    checkpoint_every: stored.result.checkpointEvery ?? 0,
    window_ms: median(times),
    window_ms_max: Math.max(...times),
    windows_timed: times.length,
    live_overhead: 1 - traced.rate / plain.rate,
    live_overhead_windows: 1 - windows.rate / plain.rate,
    live_overhead_windows_trail: 1 - windowsTrail.rate / plain.rate,
    live_mode: liveModes.get('auto') ?? 'taps',
    live_mode_windows: liveModes.get('windows') ?? 'taps',
    ...(options.trailPieces?.length ? { live_overhead_windows_by_trail_piece: byPiece } : {}),
    decode_tok_s: plain.rate,
    decode_traced_tok_s: traced.rate,
    decode_traced_windows_tok_s: windows.rate,
    decode_traced_windows_trail_tok_s: windowsTrail.rate,
    decode_traced_in_place_tok_s: inPlace.rate,
    step_cpu_ms: plain.encodeMs,
    step_cpu_ms_traced_in_place: inPlace.encodeMs,
    step_cpu_ms_windows: windows.encodeMs,
  };
}
