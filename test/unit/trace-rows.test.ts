/** A trace growing as tokens stream: rows append in order, and rows that do not fit are refused. */
import { describe, expect, it } from 'vitest';
import { appendTraceRows, TraceRowsBuilder } from '../../app/analysis/trace-rows';
import type { TraceResult, TraceRows } from '../../app/analysis/types';

const W = 3;
const N = 2;
/** Rows [from, from + T) whose values encode (layer, token, column), so order mistakes show. */
function rows(from: number, T: number, withA = from === 0): TraceRows {
  const layers = [0, 2];
  const fill = (width: number, tag: number) => layers.map((l) => Float32Array.from({ length: T * width }, (_, i) => tag * 1000 + l * 100 + (from + Math.floor(i / width)) + (i % width) / 10));
  return {
    from,
    traceId: 'trace-7',
    modelId: 'm',
    architecture: 'mamba',
    ids: Array.from({ length: T }, (_, t) => from + t),
    tokens: Array.from({ length: T }, (_, t) => `t${from + t}`),
    layers,
    deltaWidth: W,
    deltaUnit: 'channel',
    delta: fill(W, 1),
    deltaNorm: fill(1, 2),
    writeGate: fill(1, 3),
    dState: N,
    nGroups: 1,
    B: fill(N, 4),
    C: fill(N, 5),
    aStates: N,
    stateNorm: fill(1, 6),
    topNext: { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) },
    ...(withA ? { A: layers.map(() => new Float32Array(W * N).fill(-1)) } : {}),
  };
}

describe('appendTraceRows', () => {
  it('joins rows in order into the trace of all of them', () => {
    let trace = appendTraceRows(null, rows(0, 4));
    trace = appendTraceRows(trace, rows(4, 1));
    trace = appendTraceRows(trace, rows(5, 3));
    const whole = rows(0, 8);
    expect(trace.ids).toEqual(whole.ids);
    expect(trace.tokens).toEqual(whole.tokens);
    for (const key of ['delta', 'deltaNorm', 'writeGate', 'B', 'C', 'stateNorm'] as const) {
      trace[key].forEach((a, i) => expect([...a], `${key}[${i}]`).toEqual([...whole[key][i]!]));
    }
    expect(trace.A).toHaveLength(2);
    expect(trace.traceId).toBe('trace-7');
  });

  it('starts over at row 0, and refuses gaps, strangers and a first window without A', () => {
    const trace = appendTraceRows(appendTraceRows(null, rows(0, 4)), rows(4, 2));
    expect(appendTraceRows(trace, rows(0, 2)).ids).toEqual([0, 1]);
    expect(() => appendTraceRows(trace, rows(7, 1))).toThrow('rows from 7 do not follow the 6 rows so far');
    expect(() => appendTraceRows(null, rows(3, 1))).toThrow('no trace to append to');
    expect(() => appendTraceRows(trace, { ...rows(6, 1), layers: [0, 1] })).toThrow(/another trace/);
    expect(() => appendTraceRows(trace, { ...rows(6, 1), traceId: 'trace-8' })).toThrow(/another trace/);
    expect(() => appendTraceRows(null, rows(0, 2, false))).toThrow('the first rows of a trace carry A');
  });
});

describe('TraceRowsBuilder (the live trace: rows joined once at the end)', () => {
  it('gives what appending the rows one by one gives, and refuses what appendTraceRows refuses', () => {
    const pieces = [rows(0, 4), rows(4, 1), rows(5, 3)].map((r, i) => ({ ...r, topNext: { k: 2, ids: Int32Array.from({ length: 2 * r.ids.length }, (_, j) => i * 100 + j), probs: Float32Array.from({ length: 2 * r.ids.length }, (_, j) => j / 10) } }));
    const builder = new TraceRowsBuilder();
    expect(builder.result()).toBeNull();
    let sequential: TraceResult | null = null;
    for (const piece of pieces) {
      builder.append(piece);
      sequential = appendTraceRows(sequential, piece);
    }
    expect(builder.result()).toEqual(sequential);
    expect(builder.result()!.ids).toEqual(rows(0, 8).ids);
    // Row 0 starts over.
    builder.append(rows(0, 2));
    expect(builder.result()!.ids).toEqual([0, 1]);
    expect(() => builder.append(rows(3, 1))).toThrow('rows from 3 do not follow the 2 rows so far');
    expect(() => builder.append({ ...rows(2, 1), traceId: 'trace-8' })).toThrow(/another trace/);
    expect(() => new TraceRowsBuilder().append(rows(3, 1))).toThrow('no trace to append to');
    expect(() => new TraceRowsBuilder().append(rows(0, 2, false))).toThrow('the first rows of a trace carry A');
  });
});
