/**
 * The traces an engine keeps, by id, for hidden attention and knockout on any recent trace (not
 * only the last one): a prompt's trace, or a generation's live trace once it finished. Bounded:
 * the `limit` most recent, and at most `maxBytes` of CPU copies (the newest is always kept);
 * the oldest go first. Ids are never reused, so an id from before an unload never names a later
 * trace.
 */
import type { StoredTrace } from './types.js';

/** How many traces are kept by default. */
export const TRACES_KEPT = 8;
/** How many bytes of kept traces by default (beyond it the oldest go, all but the newest). */
export const TRACE_BYTES_KEPT = 2 ** 30;
/** How many GPU bytes of kept traces by default (long traces' state checkpoints). */
export const TRACE_GPU_BYTES_KEPT = 2 ** 30;

/** The bytes a kept trace holds (its typed arrays). */
export function storedTraceBytes(trace: StoredTrace): number {
  const r = trace.result;
  const lists = [r.delta, r.deltaNorm, r.writeGate, r.B, r.C, r.A, r.stateNorm, r.stateNormByHead ?? [], [...trace.aLogs.values()]];
  let bytes = r.topNext.ids.byteLength + r.topNext.probs.byteLength + (r.focusScore ?? []).reduce((s, a) => s + a.byteLength, 0);
  for (const list of lists) for (const a of list) bytes += a.byteLength;
  return bytes;
}

export class TraceStore {
  private readonly traces = new Map<string, { trace: StoredTrace; bytes: number }>();
  private next = 1;

  constructor(
    readonly limit = TRACES_KEPT,
    readonly maxBytes = TRACE_BYTES_KEPT,
    /** GPU bytes of kept traces (long traces' checkpoints) beyond which the oldest go, all but the newest. */
    readonly maxGpuBytes = TRACE_GPU_BYTES_KEPT,
  ) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError(`TraceStore: limit must be a whole number ≥ 1, got ${limit}`);
  }

  /** A fresh id for a trace about to be made (a live trace tags its rows with it before it is kept). */
  newId(): string {
    return `trace-${this.next++}`;
  }

  /** Keeps a trace under its result's traceId, as the most recent; evicts the oldest beyond the bounds. */
  keep(trace: StoredTrace): void {
    const id = trace.result.traceId;
    const before = this.traces.get(id);
    if (before && before.trace !== trace) before.trace.release?.();
    this.traces.delete(id);
    this.traces.set(id, { trace, bytes: storedTraceBytes(trace) });
    let bytes = 0;
    let gpuBytes = 0;
    for (const t of this.traces.values()) {
      bytes += t.bytes;
      gpuBytes += t.trace.gpuBytes ?? 0;
    }
    for (const [oldest, t] of this.traces) {
      if (this.traces.size <= 1 || (this.traces.size <= this.limit && bytes <= this.maxBytes && gpuBytes <= this.maxGpuBytes)) break;
      this.traces.delete(oldest);
      t.trace.release?.();
      bytes -= t.bytes;
      gpuBytes -= t.trace.gpuBytes ?? 0;
    }
  }

  /** The trace kept under `id`, or a clear error when it is unknown or was evicted. */
  get(id: string): StoredTrace {
    const kept = this.traces.get(id);
    if (!kept) throw new Error(`Trace ${id} is no longer kept: trace again.`);
    return kept.trace;
  }

  has(id: string): boolean {
    return this.traces.has(id);
  }

  /** The kept ids, oldest first. */
  get ids(): string[] {
    return [...this.traces.keys()];
  }

  /** Drops every trace (the model was unloaded, or the device lost), freeing what they hold on the GPU. */
  clear(): void {
    for (const t of this.traces.values()) t.trace.release?.();
    this.traces.clear();
  }
}
