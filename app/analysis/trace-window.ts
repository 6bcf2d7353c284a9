/**
 * Windows of a trace (issue 18): the bounds every window request is checked against, and the
 * window of a trace that kept every row. Long traces recompute theirs (checkpoints.ts).
 */
import type { StoredTrace, TraceWindowResult } from './types.js';

/** Above this many bytes of Δ, B and C (CPU copy), 'auto' traces keep windows, not every row. */
export const FULL_TRACE_MAX_BYTES = 256 * 2 ** 20;
/** The most tokens one traceWindow request returns. */
export const TRACE_WINDOW_MAX = 8192;

/** Checks a window request against a trace: a layer it has, 0 ≤ from < to ≤ T, at most TRACE_WINDOW_MAX tokens. */
export function checkWindow(trace: StoredTrace, window: { layer: number; from: number; to: number }): number {
  const r = trace.result;
  const index = r.layers.indexOf(window.layer);
  if (index < 0) throw new RangeError(`Trace ${r.traceId} has no layer ${window.layer} (it has ${r.layers.join(', ')}).`);
  const T = r.ids.length;
  const { from, to } = window;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) {
    throw new RangeError(`Tokens ${from}..${to} are not a window of trace ${r.traceId} (${T} tokens).`);
  }
  if (to - from > TRACE_WINDOW_MAX) throw new RangeError(`A window is at most ${TRACE_WINDOW_MAX} tokens; ${to - from} were asked for.`);
  return index;
}

/** The window of a trace that kept every row ('all'): slices of its arrays. */
export function traceWindowOf(trace: StoredTrace, window: { layer: number; from: number; to: number }): TraceWindowResult {
  const index = checkWindow(trace, window);
  const r = trace.result;
  if (r.detail === 'windows') throw new Error(`Trace ${r.traceId} keeps windows: recompute them (recomputeWindow).`);
  const { from, to, layer } = window;
  const G = r.nGroups * r.dState;
  const byHead = r.stateNormByHead?.[index];
  const H = byHead ? byHead.length / r.ids.length : 0;
  return {
    traceId: r.traceId,
    layer,
    from,
    to,
    delta: (r.delta[index] as Float32Array).slice(from * r.deltaWidth, to * r.deltaWidth),
    B: (r.B[index] as Float32Array).slice(from * G, to * G),
    C: (r.C[index] as Float32Array).slice(from * G, to * G),
    ...(byHead ? { stateNormByHead: byHead.slice(from * H, to * H) } : {}),
  };
}

