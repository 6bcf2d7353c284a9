/**
 * The selection panels' pure functions: scores, bands and thresholds, the heatmap view along
 * tokens and the cell under a point, the hover readout, studio.json hints, and the colormap
 * tables (checked against matplotlib's / turbo's published endpoint colours).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceResult } from '../../app/engine/protocol';
import { COLORMAPS, colormapCss, colormapRgb, colormapTable } from '../../renderer/src/panels/colormaps';
import {
  bandOf,
  bands,
  cellAt,
  cellCentre,
  clampView,
  defaultThresholds,
  fullView,
  moveThreshold,
  moveToken,
  normalize,
  panView,
  parseIds,
  quantile,
  readoutAt,
  scoreLabel,
  studioHints,
  tokenScores,
  tokenTexts,
  valueRange,
  zoomView,
} from '../../renderer/src/panels/selection';

const root = path.resolve(import.meta.dirname, '../..');

/** A random trace of T tokens × Di channels over two layers. */
function randomTrace(T: number, Di: number): TraceResult {
  const delta = [0, 1].map(() => Float32Array.from({ length: T * Di }, () => Math.random() * 2));
  return {
    traceId: 'trace-1',
    modelId: 'random',
    architecture: 'mamba',
    ids: Array.from({ length: T }, (_, t) => t % 7),
    tokens: Array.from({ length: T }, (_, t) => String(t % 7)),
    layers: [0, 3],
    deltaWidth: Di,
    deltaUnit: 'channel',
    nGroups: 1,
    aStates: 2,
    topNext: { k: 1, ids: new Int32Array(T), probs: new Float32Array(T).fill(1) },
    delta,
    deltaNorm: delta.map((d) => tokenScores(d, Di, { kind: 'norm' })),
    writeGate: delta.map(() => new Float32Array(T)),
    dState: 2,
    B: delta.map(() => new Float32Array(T * 2)),
    C: delta.map(() => new Float32Array(T * 2)),
    A: delta.map(() => new Float32Array(Di * 2).fill(-1)),
    stateNorm: delta.map(() => new Float32Array(T)),
  };
}

describe('selection scores', () => {
  it('‖Δ_t‖ and the mean over focus channels, per token', () => {
    const T = 13;
    const Di = 11;
    const delta = Float32Array.from({ length: T * Di }, () => Math.random());
    const norms = tokenScores(delta, Di, { kind: 'norm' });
    const focus = tokenScores(delta, Di, { kind: 'focus', channels: [3, 10, 0, 99] }); // 99 is past Di: left out
    for (let t = 0; t < T; t++) {
      const row = Array.from(delta.subarray(t * Di, (t + 1) * Di));
      expect(norms[t]).toBeCloseTo(Math.hypot(...row), 5);
      expect(focus[t]).toBeCloseTo((row[3]! + row[10]! + row[0]!) / 3, 6);
    }
    expect(() => tokenScores(delta, 12, { kind: 'norm' })).toThrow(RangeError);
    expect(() => tokenScores(delta, Di, { kind: 'focus', channels: [50] })).toThrow(/none of the focus channels/);
    expect(scoreLabel({ kind: 'norm' })).toBe('‖Δ_t‖ over all channels');
    expect(scoreLabel({ kind: 'focus', channels: [192, 137, 230, 143, 251] })).toBe('mean Δ over focus channels 192, 137, 230, 143, … (5)');
  });

  it('bands from thresholds; terciles to start; thresholds stay ordered', () => {
    const th = { low: 1, high: 2 };
    expect(bandOf(0.5, th)).toBe('filtered');
    expect(bandOf(1, th)).toBe('filtered');
    expect(bandOf(1.5, th)).toBe('between');
    expect(bandOf(2, th)).toBe('write');
    expect(bands([3, 0, 1.2], th)).toEqual(['write', 'filtered', 'between']);
    const scores = Array.from({ length: 301 }, () => Math.random());
    const d = defaultThresholds(scores);
    const counts = { write: 0, between: 0, filtered: 0 };
    for (const b of bands(scores, d)) counts[b]++;
    for (const c of Object.values(counts)) expect(Math.abs(c - 100)).toBeLessThanOrEqual(2);
    // Ties (a prompt of mostly one token): the terciles meet, so the thirds of the range are used.
    expect(defaultThresholds([1, 1, 1, 1, 1, 1, 0, 4])).toEqual({ low: 4 / 3, high: 8 / 3 });
    expect(quantile([5, 1, 3, NaN], 0.5)).toBe(3);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([], 0.5)).toBeNaN();
    expect(moveThreshold(th, 'low', 3)).toEqual({ low: 3, high: 3 });
    expect(moveThreshold(th, 'high', 0.5)).toEqual({ low: 0.5, high: 0.5 });
    expect(moveThreshold(th, 'high', 4)).toEqual({ low: 1, high: 4 });
  });

  it('value ranges and normalisation on log and linear scales', () => {
    expect(valueRange([3, -1, 0, 8, NaN], false)).toEqual({ min: -1, max: 8 });
    expect(valueRange([3, -1, 0, 8, NaN], true)).toEqual({ min: 3, max: 8 });
    expect(valueRange([], true)).toEqual({ min: 1e-6, max: 1 });
    expect(normalize(5, { min: 0, max: 10 }, false)).toBe(0.5);
    expect(normalize(10, { min: 1, max: 100 }, true)).toBeCloseTo(0.5, 12);
    expect(normalize(0, { min: 1, max: 100 }, true)).toBe(0);
    expect(normalize(1e9, { min: 1, max: 100 }, true)).toBe(1);
  });
});

describe('heatmap view and hover', () => {
  it('zooms around the anchor, pans, and stays inside the tokens', () => {
    const T = 257;
    let v = fullView(T);
    v = zoomView(v, 4, 0.5, T);
    expect(v.count).toBeCloseTo(T / 4, 9);
    expect(v.start + v.count / 2).toBeCloseTo(T / 2, 9);
    v = panView(v, 10, T);
    expect(v.start + v.count).toBeCloseTo(T, 9);
    v = panView(v, -100, T);
    expect(v.start).toBe(0);
    expect(zoomView(v, 1000, 0.3, T).count).toBe(4);
    expect(zoomView(v, 0.001, 0.3, T)).toEqual({ start: 0, count: T });
    expect(clampView({ start: -5, count: 2 }, 3)).toEqual({ start: 0, count: 3 });
  });

  it('finds the cell under a point, the inverse of the cell centre, on odd sizes and zoomed views', () => {
    const T = 37;
    const Di = 19;
    const [W, H] = [613, 211];
    for (const view of [fullView(T), { start: 3.4, count: 11.7 }]) {
      for (let i = 0; i < 50; i++) {
        const token = Math.ceil(view.start) + Math.floor(Math.random() * Math.floor(view.count - 1));
        const channel = Math.floor(Math.random() * Di);
        const p = cellCentre(view, Di, token, channel, W, H);
        expect(cellAt(view, Di, p.x, p.y, W, H)).toEqual({ token, channel });
      }
    }
    expect(cellAt(fullView(T), Di, 0, 0, W, H)).toEqual({ token: 0, channel: 0 });
    expect(cellAt(fullView(T), Di, W - 0.01, H - 0.01, W, H)).toEqual({ token: T - 1, channel: Di - 1 });
    expect(cellAt(fullView(T), Di, -1, 5, W, H)).toBeNull();
    expect(cellAt(fullView(T), Di, 5, H, W, H)).toBeNull();
  });

  it('reads out the trace value at (token, channel) of the selected layer', () => {
    const trace = randomTrace(23, 17);
    for (let i = 0; i < 30; i++) {
      const token = Math.floor(Math.random() * 23);
      const channel = Math.floor(Math.random() * 17);
      const r = readoutAt(trace, 1, token, channel, ['x']);
      expect(r).toEqual({ token, channel, layer: 3, id: token % 7, text: token === 0 ? 'x' : '', value: trace.delta[1]![token * 17 + channel] });
    }
    expect(readoutAt(trace, 0, 23, 0)).toBeNull();
    expect(readoutAt(trace, 0, 0, 17)).toBeNull();
    expect(readoutAt(trace, 2, 0, 0)).toBeNull();
    expect(readoutAt(trace, 0, 4, 5)?.text).toBe('4');
  });

  it('moves the hovered token with the arrow keys, Home and End', () => {
    expect(moveToken(null, 'ArrowRight', 5)).toBe(0);
    expect(moveToken(null, 'ArrowLeft', 5)).toBe(4);
    expect(moveToken(2, 'ArrowRight', 5)).toBe(3);
    expect(moveToken(4, 'ArrowRight', 5)).toBe(4);
    expect(moveToken(0, 'ArrowLeft', 5)).toBe(0);
    expect(moveToken(3, 'Home', 5)).toBe(0);
    expect(moveToken(1, 'End', 5)).toBe(4);
    expect(moveToken(1, 'a', 5)).toBeNull();
    expect(moveToken(null, 'ArrowRight', 0)).toBeNull();
  });
});

describe('studio.json hints and token texts', () => {
  it("reads the selective-copy model's labels, focus layer and channels, and suggested prompt", () => {
    const json: unknown = JSON.parse(readFileSync(path.join(root, 'resources/models/selective-copy/studio.json'), 'utf8'));
    const hints = studioHints(json);
    expect(hints.labels).toHaveLength(18);
    expect(hints.labels?.[0]).toBe('·');
    expect(hints.labels?.[17]).toBe('?');
    expect(hints.focusLayer).toBe(0);
    expect(hints.focusChannels?.slice(0, 4)).toEqual([192, 137, 230, 143]);
    expect(hints.suggestedIds).toHaveLength(256);
    expect(tokenTexts({ ids: [0, 1, 17], tokens: ['0', '1', '17'] }, hints.labels)).toEqual(['·', 'A', '?']);
    expect(tokenTexts({ ids: [0, 18], tokens: ['0', '18'] }, hints.labels)).toEqual(['0', '18']); // an id past the labels
    expect(studioHints(null)).toEqual({});
    expect(studioHints({ tokenizer: { labels: [1, 2] }, focus_layer: -1, focus_channels: 'x' })).toEqual({});
    expect(parseIds('5, 17 3')).toEqual([5, 17, 3]);
    expect(parseIds('5, -1')).toBeNull();
    expect(parseIds('')).toBeNull();
  });
});

describe('colormaps', () => {
  it('match the published endpoint and midpoint colours, and are 256 RGBA entries', () => {
    // matplotlib's viridis and magma endpoints and mid-point; turbo's from its reference table.
    const expected: Record<string, [number, [number, number, number]][]> = {
      viridis: [[0, [0.267, 0.005, 0.329]], [0.5, [0.128, 0.567, 0.551]], [1, [0.993, 0.906, 0.144]]],
      magma: [[0, [0.001, 0.0, 0.014]], [0.5, [0.716, 0.215, 0.475]], [1, [0.987, 0.991, 0.75]]],
      turbo: [[0, [0.19, 0.072, 0.232]], [0.5, [0.643, 0.99, 0.234]], [1, [0.48, 0.016, 0.011]]],
      // Moreland's cool-warm ends, RGB (59, 76, 192) and (180, 4, 38) / 255; white in the middle.
      diverging: [[0, [59 / 255, 76 / 255, 192 / 255]], [0.5, [1, 1, 1]], [1, [180 / 255, 4 / 255, 38 / 255]]],
    };
    // The viridis/magma fits are within 0.03 everywhere; turbo's published degree-5 fit is coarser at the ends.
    const tolerance: Record<string, number> = { viridis: 0.03, magma: 0.03, turbo: 0.13, diverging: 0.003 };
    for (const name of COLORMAPS) {
      for (const [t, rgb] of expected[name]!) {
        const got = colormapRgb(name, t);
        got.forEach((c, i) => expect(Math.abs(c - rgb[i]!), `${name}(${t})[${i}]`).toBeLessThanOrEqual(tolerance[name]!));
      }
      const table = colormapTable(name);
      expect(table).toHaveLength(1024);
      for (let i = 0; i < 256; i++) expect(table[i * 4 + 3]).toBe(255);
    }
    expect(colormapCss('viridis', 0)).toBe('rgb(71, 1, 85)');
    expect(colormapCss('viridis', NaN)).toBe(colormapCss('viridis', 0));
  });
});
