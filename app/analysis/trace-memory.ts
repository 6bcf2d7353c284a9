/**
 * What a prompt trace (trace.ts `tracePrompt`) of `tokens` tokens over `layers` layers allocates,
 * for the memory plan (app/model/memory-plan.ts), which cannot see the recorder from its layer:
 *
 *   GPU  the recorder's buffers (TraceRecorder.bytesPerToken · tokens, with the taps tracePrompt
 *        asks for), the session the trace runs in (its state and logits: `sessionBytes`, the plan's
 *        per-sequence state), the logits of one prefill chunk [min(chunk, T), V] and their top-k
 *        words, and the staging buffer a read back goes through (gpu/buffers.ts readBuffer: one at a
 *        time, the largest one buffer of one layer, T rows). A live trace (startLiveTrace) takes the recorder's buffers with the top next tokens,
 *        and its trail (trace-trail.ts: a second session, one piece's logits ≤ a chunk's): about this.
 *   CPU  the copy the engine keeps (TraceStore, storedTraceBytes): Δ, B, C, the per-token
 *        summaries, A and A_log, the top next tokens. Kept in the JS heap, never on the GPU; the
 *        store keeps at most TRACE_BYTES_KEPT of them.
 */
import { traceLayout } from '../arch/registry.js';
import { configBlocks, type MambaConfig } from '../model/config.js';
import type { TraceMemory } from '../model/memory-plan.js';
import { TOP_NEXT } from './distributions.js';
import { TraceRecorder, type ExtraTap } from './recorder.js';

/** The trace the app's engine plans room for when it loads a model: every layer, this many tokens. */
export const PLANNED_TRACE_TOKENS = 1024;

/** The taps tracePrompt adds (trace.ts extraTaps: x for Mamba-1, whose rows do not hold it). */
function promptTaps(config: MambaConfig): ExtraTap[] {
  const layout = traceLayout(config);
  return layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
}

/** Rounded up to whole words, at least one (gpu/buffers.ts storageBuffer). */
const bufferBytes = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);

/**
 * The trace buffers of a prompt trace of `tokens` tokens over `layers` layers (default all), for a
 * model built with prefill chunks of `chunk` tokens; `sessionBytes`: one sequence's state and logits.
 */
export function traceMemory(config: MambaConfig, options: { tokens: number; layers?: number; chunk: number; sessionBytes: number }): TraceMemory {
  const T = Math.max(0, Math.floor(options.tokens));
  // Every traceable block by default: a hybrid's attention and MLP blocks have no selection to trace.
  const L = options.layers ?? configBlocks(config).filter((b) => b.kind === 'ssm').length;
  if (T === 0 || L === 0) return { tokens: T, layers: L, gpu: 0, cpu: 0 };
  const layout = traceLayout(config);
  const V = config.vocabSize;
  const K = Math.min(TOP_NEXT, V);
  const rows = Math.min(options.chunk, T);
  const taps = promptTaps(config);
  const perLayerRow = TraceRecorder.bytesPerToken(config, 1, taps);
  const recorder = L * bufferBytes(perLayerRow * T);
  const widest = Math.max(layout.deltaWidth, layout.rowWidth, taps.length > 0 ? config.dInner : 0);
  const readback = Math.max(bufferBytes(4 * T * widest), bufferBytes(rows * 2 * K * 4));
  const gpu = recorder + options.sessionBytes + bufferBytes(rows * V * 4) + bufferBytes(rows * 2 * K * 4) + readback;
  const byHead = layout.deltaUnit === 'head' ? layout.deltaWidth : 0;
  const cpuPerLayer = 4 * T * (layout.deltaWidth + 3 + 2 * layout.bcWidth + byHead) + 2 * 4 * layout.deltaWidth * layout.aStates;
  const cpu = L * cpuPerLayer + T * K * 8;
  return { tokens: T, layers: L, gpu, cpu };
}
