/**
 * A trace's layout per architecture: where Δ, B and C live in the forward's taps (the
 * TraceRecorder reads them from there) and what a trace's columns are. The one trace path that
 * uses it is app/analysis/trace.ts.
 */
import type { MambaModel } from '../model/base.js';

/** A trace's shape per architecture: where Δ, B and C live in the taps, and what a Δ column is. */
export interface TraceLayout {
  /** Δ's columns per token: d_inner channels (Mamba-1) or heads (Mamba-2). */
  deltaWidth: number;
  /** What a Δ column is: a channel (Mamba-1: A is [Di, N]) or a head (Mamba-2: one scalar A per head). */
  deltaUnit: 'channel' | 'head';
  /** B/C groups: 1 for Mamba-1; Mamba-2's n_groups. */
  nGroups: number;
  /** A's states per Δ column: N for Mamba-1 ([Di, N]), 1 for Mamba-2 ([H]). */
  aStates: number;
  /** Floats per token in the dbc tap (Mamba-1: x_proj's dt_r | B | C; Mamba-2: the conv's x | B | C). */
  rowWidth: number;
  bOffset: number;
  cOffset: number;
  /** B's (and C's) floats per token: nGroups·N. */
  bcWidth: number;
}

/** Where Δ, B and C live in the taps, per architecture. */
export function traceLayout(config: MambaModel['config']): TraceLayout {
  const { dInner: Di, dState: N, dtRank: R, nGroups: G, nHeads: H } = config;
  return config.architecture === 'mamba2'
    ? { deltaWidth: H, deltaUnit: 'head', nGroups: G, aStates: 1, rowWidth: Di + 2 * G * N, bOffset: Di, cOffset: Di + G * N, bcWidth: G * N }
    : { deltaWidth: Di, deltaUnit: 'channel', nGroups: 1, aStates: N, rowWidth: R + 2 * N, bOffset: R, cOffset: R + N, bcWidth: N };
}
