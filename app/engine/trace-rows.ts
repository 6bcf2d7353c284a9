/**
 * A trace growing as tokens stream: the rows of a 'trace-rows' event appended to the trace so far
 * (a new trace when they start at row 0). Pure; the renderer's store and the engine both use it.
 */
import type { TraceResult, TraceRows } from './protocol.js';

function concat<T extends Float32Array | Int32Array>(a: T, b: T): T {
  const out = new (a.constructor as new (n: number) => T)(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const perLayer = <T extends Float32Array>(a: readonly T[], b: readonly T[]) => a.map((x, i) => concat(x, b[i] as T));

export function appendTraceRows(current: TraceResult | null, rows: TraceRows): TraceResult {
  const { from, A, ...rest } = rows;
  if (from === 0) {
    if (!A) throw new RangeError('appendTraceRows: the first rows of a trace carry A');
    return { ...rest, A };
  }
  if (!current) throw new RangeError(`appendTraceRows: rows from ${from} but there is no trace to append to`);
  if (current.ids.length !== from) throw new RangeError(`appendTraceRows: rows from ${from} do not follow the ${current.ids.length} rows so far`);
  if (current.modelId !== rows.modelId || current.layers.join() !== rows.layers.join() || current.topNext.k !== rows.topNext.k) {
    throw new RangeError('appendTraceRows: the rows belong to another trace (model, layers or k differ)');
  }
  return {
    ...current,
    ids: [...current.ids, ...rows.ids],
    tokens: [...current.tokens, ...rows.tokens],
    delta: perLayer(current.delta, rows.delta),
    deltaNorm: perLayer(current.deltaNorm, rows.deltaNorm),
    writeGate: perLayer(current.writeGate, rows.writeGate),
    B: perLayer(current.B, rows.B),
    C: perLayer(current.C, rows.C),
    stateNorm: perLayer(current.stateNorm, rows.stateNorm),
    ...(current.stateNormByHead && rows.stateNormByHead ? { stateNormByHead: perLayer(current.stateNormByHead, rows.stateNormByHead) } : {}),
    topNext: { k: current.topNext.k, ids: concat(current.topNext.ids, rows.topNext.ids), probs: concat(current.topNext.probs, rows.topNext.probs) },
  };
}
