/**
 * app/analysis/trace-store.ts: traces kept by id — the most recent `limit`, and no more bytes
 * than `maxBytes` (the newest always kept); an unknown or evicted id is a clear error; ids are
 * never reused, not even after `clear`.
 */
import { describe, expect, it } from 'vitest';
import { storedTraceBytes, TraceStore, TRACES_KEPT } from '../../app/analysis/trace-store';
import type { StoredTrace } from '../../app/analysis/types';

/** A kept trace of T tokens, one layer of width W with N states. */
function stored(traceId: string, T = 3, W = 2, N = 2): StoredTrace {
  const f = (n: number) => new Float32Array(n);
  return {
    result: {
      traceId,
      modelId: 'm',
      architecture: 'mamba',
      ids: Array.from({ length: T }, (_, t) => t),
      tokens: Array.from({ length: T }, (_, t) => String(t)),
      layers: [0],
      deltaWidth: W,
      deltaUnit: 'channel',
      delta: [f(T * W)],
      deltaNorm: [f(T)],
      writeGate: [f(T)],
      dState: N,
      nGroups: 1,
      B: [f(T * N)],
      C: [f(T * N)],
      A: [f(W * N)],
      aStates: N,
      stateNorm: [f(T)],
      topNext: { k: 1, ids: new Int32Array(T), probs: f(T) },
    },
    aLogs: new Map([[0, f(W * N)]]),
  };
}

describe('TraceStore', () => {
  it('keeps the most recent traces by id and evicts the oldest', () => {
    const store = new TraceStore(3);
    const ids = Array.from({ length: 5 }, () => store.newId());
    expect(new Set(ids).size).toBe(5);
    const traces = ids.map((id) => stored(id));
    traces.slice(0, 3).forEach((t) => store.keep(t));
    expect(store.get(ids[0]!)).toBe(traces[0]);
    expect(store.ids).toEqual(ids.slice(0, 3));
    store.keep(traces[3]!);
    store.keep(traces[4]!);
    expect(store.ids).toEqual(ids.slice(2));
    expect(store.get(ids[2]!)).toBe(traces[2]);
    expect(() => store.get(ids[0]!)).toThrow(`Trace ${ids[0]} is no longer kept: trace again.`);
    expect(() => store.get('nope')).toThrow('Trace nope is no longer kept: trace again.');
    expect(new TraceStore().limit).toBe(TRACES_KEPT);
  });

  it('evicts the oldest beyond its byte budget, but always keeps the newest', () => {
    const one = storedTraceBytes(stored('x'));
    // 3·2 + 3 + 3 + 3·2 + 3·2 + 2·2 + 3 floats, 3 + 3 top-next words, A_log 2·2: (31 + 6 + 4)·4 bytes.
    expect(one).toBe((31 + 6 + 4) * 4);
    const store = new TraceStore(8, 2 * one);
    for (const id of ['a', 'b', 'c']) store.keep(stored(id));
    expect(store.ids).toEqual(['b', 'c']);
    store.keep(stored('big', 100));
    expect(store.ids).toEqual(['big']);
  });

  it('drops everything on clear, and never reuses an id', () => {
    const store = new TraceStore();
    const first = store.newId();
    store.keep(stored(first));
    store.clear();
    expect(store.has(first)).toBe(false);
    expect(() => store.get(first)).toThrow(/no longer kept/);
    expect(store.newId()).not.toBe(first);
    expect(() => new TraceStore(0)).toThrow(/limit/);
  });

  it("frees a long trace's GPU checkpoints when it is evicted, replaced or cleared, and bounds their GPU bytes", () => {
    const released: string[] = [];
    const long = (id: string, gpuBytes: number): StoredTrace => ({ ...stored(id), gpuBytes, release: () => released.push(id) });
    const store = new TraceStore(8, 2 ** 30, 100);
    store.keep(long('a', 60));
    store.keep(stored('b'));
    expect(released).toEqual([]);
    store.keep(long('c', 60)); // 120 GPU bytes > 100: the oldest (a) goes, and is freed
    expect(store.ids).toEqual(['b', 'c']);
    expect(released).toEqual(['a']);
    store.keep(long('c', 10)); // the same id kept again: the one it replaces is freed
    expect(released).toEqual(['a', 'c']);
    store.keep(long('d', 500)); // over the budget alone: the newest is kept all the same
    expect(store.ids).toEqual(['d']);
    expect(released).toEqual(['a', 'c', 'c']);
    store.clear();
    expect(released).toEqual(['a', 'c', 'c', 'd']);
    expect(store.ids).toEqual([]);
  });
});
