/**
 * The renderer's level of detail for long traces (renderer/src/panels/long-trace.ts): the
 * min/max/mean pyramid and its bins against a brute-force scan (random data, odd T, ranges at the
 * edges, bins narrower than a token), the overview's pixels against colouring brute-force bins,
 * windowView's slices, the window moves, and absolute token labels on the token axis. Also reports
 * the overview's per-frame time over 1,000,000 tokens × 64 layers (not asserted: timing).
 */
import { describe, expect, it } from 'vitest';
import type { TraceResult, TraceWindowResult } from '../../app/engine/protocol';
import { TRACE_WINDOW_MAX } from '../../app/analysis/trace-window';
import { indexTicks, tokenAxisTicks } from '../../renderer/src/panels/chart-scale';
import { colormapTable } from '../../renderer/src/panels/colormaps';
import {
  absoluteToken,
  BIN_BLOCKS,
  PYRAMID_LEAF,
  binAggregate,
  binRanges,
  binStats,
  buildPyramid,
  clampWindow,
  defaultWindow,
  moveWindowKey,
  overviewPixels,
  shiftToken,
  summariesOf,
  windowView,
  type Pyramid,
} from '../../renderer/src/panels/long-trace';
import { WindowLoader, type WindowLoaderState, type WindowWish } from '../../renderer/src/panels/use-trace-window';

/** A seeded generator (mulberry32), so failures reproduce. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Brute force: min, max and the float64 sum of values [a, b). */
function scan(values: Float32Array, a: number, b: number) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let t = a; t < b; t++) {
    const v = values[t] as number;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { min, max, mean: sum / (b - a) };
}

const range = (r: { lo: Int32Array; hi: Int32Array }, k: number) => [r.lo[k] as number, r.hi[k] as number] as const;

function checkBins(p: Pyramid, start: number, count: number, B: number, exactMean: boolean) {
  const bins = binStats(p, start, count, B);
  // The overview's one-statistic bins are binStats's, value for value.
  for (const a of ['min', 'max', 'mean'] as const) expect(Array.from(binAggregate(p, start, count, B, a, new Float32Array(B)))).toEqual(Array.from(bins[a]));
  const bad: string[] = [];
  for (let k = 0; k < B; k++) {
    const [lo, hi] = range(binRanges(start, count, B, p.leaf), k);
    const ref = scan(p.values, lo, hi);
    const mean = bins.mean[k] as number;
    const meanOk = exactMean ? mean === Math.fround(ref.mean) : Math.abs(mean - ref.mean) <= 1e-6 * Math.max(1, Math.abs(ref.mean));
    if (bins.min[k] !== ref.min || bins.max[k] !== ref.max || !meanOk) bad.push(`bin ${k} of ${start}+${count}/${B}: ${bins.min[k]} ${bins.max[k]} ${mean} vs ${ref.min} ${ref.max} ${ref.mean}`);
  }
  expect(bad).toEqual([]);
}

describe('pyramid bins', () => {
  it('bins cover the range once, in order, each at least one token; wide bins have block-aligned inner edges within 1/8 of a bin of the even split', () => {
    for (const [start, count, B] of [
      [0, 10, 3],
      [5, 3, 10],
      [0, 1, 1],
      [7, 1000, 999],
      [3, 1_000_000, 1500],
      [999, 123_457, 7],
      [1, 4095, 31],
    ] as const) {
      let prev: number = start;
      for (let k = 0; k < B; k++) {
        const [lo, hi] = range(binRanges(start, count, B), k);
        expect(hi).toBeGreaterThan(lo);
        if (count >= B) expect(lo).toBe(prev);
        const even = start + Math.floor((k * count) / B);
        const w = count / B;
        if (w >= BIN_BLOCKS * PYRAMID_LEAF) {
          if (k > 0) expect(lo % PYRAMID_LEAF).toBe(0);
          expect(Math.abs(lo - even)).toBeLessThanOrEqual(w / 8);
        } else expect(lo).toBe(even);
        prev = hi;
      }
      expect(prev).toBe(start + count);
    }
  });

  it('min and max equal a brute-force scan on random data (odd T, ranges at both edges, many leaf sizes)', () => {
    const random = rng(18);
    for (const T of [1, 2, 15, 16, 17, 33, 1001, 4097, 12_345]) {
      const values = Float32Array.from({ length: T }, () => (random() - 0.3) * 10 ** (4 * random() - 2));
      for (const leaf of [1, 2, 16, 7]) {
        const p = buildPyramid(values, leaf);
        const ref = scan(values, 0, T);
        expect(p.min).toBe(ref.min);
        const positive = Array.from(values).filter((v) => v > 0);
        expect(p.minPositive).toBe(positive.length > 0 ? Math.min(...positive) : 0);
        expect(p.max).toBe(ref.max);
        const ranges: [number, number][] = [
          [0, T],
          [0, 1],
          [T - 1, 1],
          [0, Math.max(1, T - 1)],
          [Math.min(T - 1, 1), T - Math.min(T - 1, 1)],
        ];
        for (let r = 0; r < 8; r++) {
          const start = Math.floor(random() * T);
          ranges.push([start, 1 + Math.floor(random() * (T - start))]);
        }
        for (const [start, count] of ranges) for (const B of [1, 2, 7, 64, 333]) checkBins(p, start, count, B, false);
      }
    }
  }, 60_000);

  it('the mean is exact where every sum is exact (multiples of 2^-16: float64 adds them without rounding)', () => {
    const random = rng(7);
    const T = 50_001;
    const values = Float32Array.from({ length: T }, () => Math.floor(random() * 2 ** 18) / 2 ** 16);
    const p = buildPyramid(values);
    for (const [start, count, B] of [
      [0, T, 1000],
      [T - 3000, 3000, 617],
      [12_345, 20_000, 1],
      [1, T - 1, 4096],
    ] as const) {
      checkBins(p, start, count, B, true);
    }
  });

  it('refuses ranges outside the trace', () => {
    const p = buildPyramid(new Float32Array(10));
    expect(() => binStats(p, 5, 6, 3)).toThrow(/not inside/);
    expect(() => binStats(p, -1, 2, 3)).toThrow(/not inside/);
    expect(() => binStats(p, 0, 0, 3)).toThrow(/not inside/);
  });

  it('a pyramid takes about 8 bytes a token with the default leaf (4)', () => {
    expect(PYRAMID_LEAF).toBe(4);
    const p = buildPyramid(new Float32Array(1 << 20));
    const bytes = p.levels.reduce((s, l) => s + l.min.byteLength + l.max.byteLength + l.sum.byteLength, 0);
    expect(bytes / (1 << 20)).toBeLessThanOrEqual(8);
  });
});

describe('overview pixels', () => {
  it('colour each column by its bin statistic on the colour map (brute force, log and linear)', () => {
    const random = rng(3);
    const T = 9_999;
    const rows = [0, 1, 2].map(() => buildPyramid(Float32Array.from({ length: T }, () => 0.001 + random() * 5)));
    const table = colormapTable('magma');
    for (const log of [false, true]) {
      for (const aggregate of ['min', 'max', 'mean'] as const) {
        const frame = { rows, start: 123, count: 8000, width: 301, aggregate, range: { min: 0.01, max: 4 }, log, colormap: 'magma' as const };
        const pixels = overviewPixels(frame);
        const f = (x: number) => (log ? Math.log(Math.max(x, 0.01)) : x);
        rows.forEach((p, r) => {
          for (let x = 0; x < frame.width; x++) {
            const [lo, hi] = range(binRanges(frame.start, frame.count, frame.width), x);
            const ref = scan(p.values, lo, hi);
            const v = aggregate === 'mean' ? Math.fround(ref.mean) : ref[aggregate];
            const t = Math.min(1, Math.max(0, (f(v) - f(0.01)) / (f(4) - f(0.01))));
            const c = Math.round(t * 255) * 4;
            const o = (r * frame.width + x) * 4;
            expect([pixels[o], pixels[o + 1], pixels[o + 2], pixels[o + 3]]).toEqual([table[c], table[c + 1], table[c + 2], 255]);
          }
        });
      }
    }
  });

  it('per-frame time over 1,000,000 tokens × 64 layers (reported, not asserted)', () => {
    const T = 1_000_000;
    const L = 64;
    const random = rng(1);
    const data = Array.from({ length: L }, () => {
      const d = new Float32Array(T);
      for (let t = 0; t < T; t++) d[t] = random();
      return d;
    });
    const t0 = performance.now();
    const rows = data.map((d) => buildPyramid(d));
    const built = performance.now() - t0;
    const width = 1600;
    const out = new Uint8ClampedArray(L * width * 4);
    const scratch = new Float32Array(width);
    // Panning at zoom levels from the whole trace to ~1 token a column: a new range every frame.
    const times: number[] = [];
    for (const count of [T, T / 4, T / 30, 100_000, 10_000, 1600]) {
      for (let i = 0; i < 8; i++) {
        const start = Math.floor(((T - count) * i) / 8);
        const t1 = performance.now();
        overviewPixels({ rows, start, count: Math.floor(count), width, aggregate: i % 2 ? 'mean' : 'max', range: { min: 0, max: 1 }, log: false, colormap: 'viridis' }, out, scratch);
        times.push(performance.now() - t1);
      }
    }
    const sorted = [...times].sort((a, b) => a - b);
    const perFrame = sorted[Math.floor(sorted.length / 2)] as number;
    console.log(
      `overview: pyramids of ${L} × ${T} built in ${built.toFixed(0)} ms; per frame (${width} columns × ${L} layers, ${times.length} frames): median ${perFrame.toFixed(1)} ms, min ${sorted[0]!.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`,
    );
    expect(perFrame).toBeGreaterThan(0);
  }, 120_000);
});

function trace(T: number, layers: number[]): TraceResult {
  const random = rng(T);
  const per = () => layers.map(() => Float32Array.from({ length: T }, () => random()));
  const k = 3;
  return {
    traceId: 't1',
    modelId: 'm',
    architecture: 'mamba',
    ids: Array.from({ length: T }, (_, i) => i % 50),
    tokens: Array.from({ length: T }, (_, i) => `w${i}`),
    layers,
    deltaWidth: 4,
    deltaUnit: 'channel',
    delta: layers.map(() => new Float32Array(0)),
    deltaNorm: per(),
    writeGate: per(),
    dState: 2,
    nGroups: 1,
    B: layers.map(() => new Float32Array(0)),
    C: layers.map(() => new Float32Array(0)),
    A: layers.map(() => new Float32Array(8)),
    aStates: 2,
    stateNorm: per(),
    topNext: { k, ids: Int32Array.from({ length: T * k }, (_, i) => i), probs: Float32Array.from({ length: T * k }, (_, i) => i / (T * k)) },
    detail: 'windows',
    checkpointEvery: 64,
    focusScore: per(),
    focusChannels: [1],
  };
}

function win(r: TraceResult, layer: number, from: number, to: number): TraceWindowResult {
  const n = to - from;
  const G = r.nGroups * r.dState;
  return {
    traceId: r.traceId,
    layer,
    from,
    to,
    delta: Float32Array.from({ length: n * r.deltaWidth }, (_, i) => layer * 1000 + from + i),
    B: Float32Array.from({ length: n * G }, (_, i) => -i),
    C: Float32Array.from({ length: n * G }, (_, i) => i + 0.5),
  };
}

describe('windowView', () => {
  it('slices the tokens, summaries and top next tokens, and fills Δ, B, C of the fetched layers only', () => {
    const r = trace(1000, [0, 3]);
    const w = win(r, 3, 990, 1000);
    const v = windowView(r, 990, 1000, [win(r, 0, 0, 10), w, { ...win(r, 0, 990, 1000), traceId: 'other' }]);
    expect(v.tokenOffset).toBe(990);
    expect(v.ids).toEqual(r.ids.slice(990));
    expect(v.tokens).toEqual(r.tokens.slice(990));
    for (const key of ['deltaNorm', 'writeGate', 'stateNorm', 'focusScore'] as const) {
      r.layers.forEach((_, i) => expect(Array.from(v[key]?.[i] ?? [])).toEqual(Array.from((r[key]?.[i] as Float32Array).subarray(990, 1000))));
    }
    expect(Array.from(v.topNext.ids)).toEqual(Array.from(r.topNext.ids.subarray(990 * 3, 1000 * 3)));
    expect(Array.from(v.topNext.probs)).toEqual(Array.from(r.topNext.probs.subarray(990 * 3, 1000 * 3)));
    expect(v.delta[0]?.length).toBe(0); // layer 0's only window was another range, the other trace's ignored
    expect(v.delta[1]).toBe(w.delta);
    expect(v.B[1]).toBe(w.B);
    expect(v.C[1]).toBe(w.C);
    expect(v.stateNormByHead).toBeUndefined();
    expect(absoluteToken(v, 4)).toBe(994);
    expect(absoluteToken(r, 4)).toBe(4);
    // The full trace is untouched.
    expect(r.ids.length).toBe(1000);
    expect(r.delta[1]?.length).toBe(0);
  });

  it('refuses windows outside the trace and wrong-sized window data', () => {
    const r = trace(100, [0]);
    expect(() => windowView(r, 90, 101, [])).toThrow(/not a window/);
    expect(() => windowView(r, 5, 5, [])).toThrow(/not a window/);
    const bad = { ...win(r, 0, 0, 10), delta: new Float32Array(3) };
    expect(windowView(r, 0, 10, [bad]).delta[0]?.length).toBe(0);
  });

  it('lists the summaries a trace has', () => {
    const r = trace(10, [0, 1]);
    expect(summariesOf(r)).toEqual(['deltaNorm', 'focusScore', 'writeGate', 'stateNorm']);
    delete r.focusScore;
    expect(summariesOf(r)).toEqual(['deltaNorm', 'writeGate', 'stateNorm']);
  });
});

describe('window moves', () => {
  it('default: the last min(T, 2048) tokens', () => {
    expect(defaultWindow(20_000)).toEqual({ from: 17_952, to: 20_000 });
    expect(defaultWindow(100)).toEqual({ from: 0, to: 100 });
  });
  it('keys move by a tenth, a window, or to the ends, kept inside the trace; size at most TRACE_WINDOW_MAX', () => {
    const T = 20_000;
    const w = { from: 10_000, to: 12_000 };
    expect(moveWindowKey(w, 'ArrowLeft', T)).toEqual({ from: 9800, to: 11_800 });
    expect(moveWindowKey(w, 'ArrowRight', T)).toEqual({ from: 10_200, to: 12_200 });
    expect(moveWindowKey(w, 'PageUp', T)).toEqual({ from: 8000, to: 10_000 });
    expect(moveWindowKey(w, 'PageDown', T)).toEqual({ from: 12_000, to: 14_000 });
    expect(moveWindowKey(w, 'Home', T)).toEqual({ from: 0, to: 2000 });
    expect(moveWindowKey(w, 'End', T)).toEqual({ from: 18_000, to: 20_000 });
    expect(moveWindowKey({ from: 19_000, to: 20_000 }, 'PageDown', T)).toEqual({ from: 19_000, to: 20_000 });
    expect(moveWindowKey(w, 'a', T)).toBeNull();
    expect(clampWindow(-50, 1e9, T)).toEqual({ from: 0, to: TRACE_WINDOW_MAX });
  });
});

describe('shiftToken', () => {
  it('keeps the same absolute token when the window moves, or drops it', () => {
    expect(shiftToken(100, 1000, 900, 2048)).toBe(200); // token 1100 either way
    expect(shiftToken(50, 1000, 1100, 2048)).toBe(null); // token 1050 is now before the window
    expect(shiftToken(100, 1000, 1100, 2048)).toBe(0);
    expect(shiftToken(2047, 0, 0, 2048)).toBe(2047);
    expect(shiftToken(10, 0, 5000, 2048)).toBe(null);
    expect(shiftToken(null, 0, 10, 2048)).toBe(null);
  });
});

describe('absolute token labels', () => {
  it('index ticks of a window are nice absolute indices at their local cells', () => {
    const view = { start: 0, count: 2048 };
    const ticks = indexTicks(view, 600, 2048, 60, 17_952);
    expect(ticks.length).toBeGreaterThan(1);
    for (const k of ticks) {
      expect(Number(k.label)).toBe(k.index + 17_952);
      expect(Number(k.label) % 100).toBe(0); // nice in absolute terms (the local indices are not)
      expect(k.t).toBeCloseTo((k.index + 0.5) / 2048, 12);
    }
    // Without an offset, the labels are the local indices (ordinary traces unchanged).
    expect(tokenAxisTicks(view, 600, null, 2048).ticks.map((k) => k.label)).toEqual(tokenAxisTicks(view, 600, null, 2048).ticks.map((k) => String(k.index)));
    expect(tokenAxisTicks(view, 600, null, 2048, 17_952).ticks.map((k) => k.label)).toEqual(ticks.map((k) => k.label));
  });
});

describe('WindowLoader (use-trace-window.ts)', () => {
  /** A fetch whose responses the test releases by hand. */
  function manual() {
    const calls: { wish: WindowWish; resolve(w: TraceWindowResult): void; reject(e: Error): void }[] = [];
    const fetch = (wish: WindowWish) => new Promise<TraceWindowResult>((resolve, reject) => calls.push({ wish, resolve, reject }));
    return { calls, fetch };
  }
  const r = trace(100, [0, 1]);
  const wish = (layer: number, from: number, to: number): WindowWish => ({ traceId: r.traceId, layer, from, to });
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('shows only the latest wish: an older response is kept but not shown; a kept window needs no request', async () => {
    const { calls, fetch } = manual();
    const states: WindowLoaderState[] = [];
    const loader = new WindowLoader(fetch, (s) => states.push(s));
    loader.want(wish(0, 0, 10));
    loader.want(wish(0, 10, 20));
    loader.want(wish(0, 10, 20)); // asked already: no second request
    expect(calls.map((c) => c.wish.from)).toEqual([0, 10]);
    calls[0]?.resolve(win(r, 0, 0, 10));
    await tick();
    expect(loader.state.shown).toBeNull(); // stale: not shown
    expect(loader.state.loading).toEqual(wish(0, 10, 20));
    calls[1]?.resolve(win(r, 0, 10, 20));
    await tick();
    expect(loader.state).toEqual({ shown: { traceId: 't1', from: 10, to: 20 }, loading: null, error: null });
    // The stale one was kept: going back shows it at once, without a request.
    loader.want(wish(0, 0, 10));
    expect(calls).toHaveLength(2);
    expect(loader.state.shown).toEqual({ traceId: 't1', from: 0, to: 10 });
    expect(loader.windowsOf(loader.state.shown).map((w) => w.layer)).toEqual([0]);
    // Another layer of the same range: fetched, and then both layers' windows are there.
    loader.want(wish(1, 0, 10));
    calls[2]?.resolve(win(r, 1, 0, 10));
    await tick();
    expect(
      loader
        .windowsOf(loader.state.shown)
        .map((w) => w.layer)
        .sort(),
    ).toEqual([0, 1]);
  });

  it('reports the latest wish’s failure only, naming the window', async () => {
    const { calls, fetch } = manual();
    const loader = new WindowLoader(fetch, () => undefined);
    loader.want(wish(0, 0, 10));
    loader.want(wish(1, 30, 40));
    calls[0]?.reject(new Error('old failure'));
    await tick();
    expect(loader.state.error).toBeNull();
    calls[1]?.reject(new Error('GPU lost'));
    await tick();
    expect(loader.state.error).toBe('Window 30–39 of layer 1: GPU lost');
    expect(loader.state.loading).toBeNull();
    // A failed window is asked for again next time.
    loader.want(wish(1, 30, 40));
    expect(calls).toHaveLength(3);
  });

  it('keeps at most `capacity` windows, dropping the least recently used', async () => {
    const { calls, fetch } = manual();
    const loader = new WindowLoader(fetch, () => undefined, 2);
    for (const from of [0, 10, 20]) {
      loader.want(wish(0, from, from + 10));
      calls.at(-1)?.resolve(win(r, 0, from, from + 10));
      await tick();
    }
    expect(calls).toHaveLength(3);
    loader.want(wish(0, 20, 30)); // kept
    loader.want(wish(0, 10, 20)); // kept
    expect(calls).toHaveLength(3);
    loader.want(wish(0, 0, 10)); // dropped: asked again
    expect(calls).toHaveLength(4);
  });
});
