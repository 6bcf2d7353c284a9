/**
 * The analysis panels' pure functions (renderer/src/panels/analysis.ts), on random data with
 * fresh inputs each run, against direct loops: hidden attention's causal |α| range, the transposed
 * heatmap texture and the cell ↔ point mapping (checked against the same mapping the heatmap
 * renderer's shader uses, selection.ts cellAt), the keyboard cursor, a row's top sources, the CSVs
 * (parse back to the same numbers); compare's per-layer B − A of ‖Δ_t‖; knockout's CSV and the
 * union of both top-k lists (softmax, KL and total variation: analysis-distributions.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { KnockoutResult } from '../../app/engine/protocol';
import { compareScores } from '../../app/analysis/compare';
import { klDivergence, softmax, totalVariation } from '../../app/analysis/distributions';
import { hiddenAttentionRef } from '../../app/kernels/hidden-attention.ref';
import {
  absRange,
  attentionMatrixColumns,
  attentionRowColumns,
  attentionTexture,
  causalAbsRange,
  causalAbsRow,
  compareColumns,
  denseDistribution,
  knockoutColumns,
  matrixCellAt,
  matrixCellCentre,
  matrixRow,
  moveCell,
  positionAt,
  probabilityShift,
  scaledAbs,
  topSources,
} from '../../renderer/src/panels/analysis';
import { parseCsv, toCsv } from '../../renderer/src/panels/csv';
import { cellAt, fullView } from '../../renderer/src/panels/selection';

const randn = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());

/** A random causal α [T, T] from the CPU reference of random Δ, B, C, A_log (Mamba-1, one channel). */
function randomAlpha(T: number): Float32Array {
  const Di = 3;
  const N = 4;
  const delta = Float32Array.from({ length: T * Di }, () => Math.random() * 0.5);
  const b = Float32Array.from({ length: T * N }, randn);
  const c = Float32Array.from({ length: T * N }, randn);
  const aLog = Float32Array.from({ length: Di * N }, () => Math.random() * 2 - 1);
  return Float32Array.from(hiddenAttentionRef(delta, b, c, aLog, T, Di, N, 1));
}

describe('hidden attention helpers', () => {
  it('takes the min and max of |α| over the causal entries only (linear: any finite; log: > 0)', () => {
    const T = 13;
    const alpha = randomAlpha(T);
    alpha[5 * T + 2] = 0; // a causal zero: counts on a linear scale, not on a log one
    alpha[1 * T + 9] = 1e6; // above the diagonal: never counts
    let min = Infinity;
    let max = -Infinity;
    let minPos = Infinity;
    for (let i = 0; i < T; i++)
      for (let j = 0; j <= i; j++) {
        const v = Math.abs(alpha[i * T + j]!);
        min = Math.min(min, v);
        max = Math.max(max, v);
        if (v > 0) minPos = Math.min(minPos, v);
      }
    expect(causalAbsRange(alpha, T, false)).toEqual({ min: 0, max });
    expect(min).toBe(0);
    expect(causalAbsRange(alpha, T, true)).toEqual({ min: minPos, max });
    expect(causalAbsRange(new Float32Array(4), 2, true)).toEqual({ min: 1e-12, max: 1 });
    expect(() => causalAbsRange(new Float32Array(5), 2, false)).toThrow(RangeError);
    expect(absRange([-3, 0, 2, NaN], false)).toEqual({ min: 0, max: 3 });
    expect(absRange([-3, 0, 2, NaN], true)).toEqual({ min: 2, max: 3 });
  });

  it('scales |α| min-max, on a linear or a log scale', () => {
    const range = { min: 0.01, max: 10 };
    expect(scaledAbs(-10, range, false)).toBe(1);
    expect(scaledAbs(0.01, range, false)).toBe(0);
    expect(scaledAbs(-5.005, range, false)).toBeCloseTo(0.5, 12);
    expect(scaledAbs(-Math.sqrt(0.1), range, true)).toBeCloseTo(0.5, 12); // geometric mean of 0.01 and 10
    expect(scaledAbs(0, range, true)).toBe(0);
  });

  it('transposes |α| into the texture so that the shader draws row i at y and column j at x', () => {
    const T = 11;
    const alpha = randomAlpha(T);
    const tex = attentionTexture(alpha, T);
    const width = 317;
    const height = 289;
    for (let trial = 0; trial < 200; trial++) {
      const x = Math.random() * width;
      const y = Math.random() * height;
      const cell = matrixCellAt(T, x, y, width, height)!;
      // The shader's texel under (x, y): token = the view column, channel = the row of the texture.
      const shader = cellAt(fullView(T), T, x, y, width, height)!;
      expect(tex[shader.token * T + shader.channel]).toBe(Math.abs(alpha[cell.row * T + cell.col]!));
    }
    for (let i = 0; i < T; i++)
      for (let j = 0; j < T; j++) {
        const at = matrixCellCentre(T, i, j, width, height);
        expect(matrixCellAt(T, at.x, at.y, width, height)).toEqual({ row: i, col: j });
      }
    expect(matrixCellAt(T, -1, 3, width, height)).toBeNull();
    expect(matrixCellAt(T, 3, height, width, height)).toBeNull();
  });

  it('moves the keyboard cursor inside the causal part', () => {
    const T = 5;
    expect(moveCell(null, 'ArrowDown', T)).toEqual({ row: 0, col: 0 });
    expect(moveCell(null, 'x', T)).toBeNull();
    expect(moveCell({ row: 0, col: 0 }, 'ArrowRight', T)).toEqual({ row: 0, col: 0 }); // j ≤ i
    expect(moveCell({ row: 2, col: 0 }, 'ArrowRight', T)).toEqual({ row: 2, col: 1 });
    expect(moveCell({ row: 2, col: 2 }, 'ArrowUp', T)).toEqual({ row: 1, col: 1 });
    expect(moveCell({ row: 4, col: 1 }, 'ArrowDown', T)).toEqual({ row: 4, col: 1 });
    expect(moveCell({ row: 1, col: 0 }, 'PageDown', T)).toEqual({ row: 4, col: 0 });
    expect(moveCell({ row: 3, col: 0 }, 'End', T)).toEqual({ row: 3, col: 3 });
    expect(moveCell({ row: 3, col: 2 }, 'Home', T)).toEqual({ row: 3, col: 0 });
  });

  it("lists a row's strongest sources by |α| among j ≤ i, and the row for display", () => {
    const T = 17;
    const alpha = randomAlpha(T);
    const i = 12;
    const row = matrixRow(alpha, T, i);
    expect(Array.from(row)).toEqual(Array.from(alpha.subarray(i * T, i * T + T)));
    const top = topSources(row, i, 5);
    expect(top).toHaveLength(5);
    const want = Array.from({ length: i + 1 }, (_, j) => j).sort((a, b) => Math.abs(row[b]!) - Math.abs(row[a]!));
    expect(top.map((s) => s.token)).toEqual(want.slice(0, 5));
    for (const s of top) expect(s.alpha).toBe(row[s.token]);
    expect(topSources(row, 2, 10)).toHaveLength(3);
    const shown = causalAbsRow(row, i);
    for (let j = 0; j < T; j++) {
      if (j <= i) expect(shown[j]).toBe(Math.abs(row[j]!));
      else expect(shown[j]).toBeNaN();
    }
    expect(() => matrixRow(alpha, T, T)).toThrow(RangeError);
  });

  it('writes the matrix and row CSVs with the same numbers', () => {
    const T = 7;
    const alpha = randomAlpha(T);
    alpha[3 * T + 1] = -Math.abs(alpha[3 * T + 1]!) - 1e-3; // a negative entry survives
    const ids = Array.from({ length: T }, (_, t) => t * 3);
    const texts = ids.map((id) => (id === 6 ? 'a, "b"' : `t${id}`));
    const rows = parseCsv(toCsv(attentionMatrixColumns(alpha, T, ids, texts)));
    expect(rows).toHaveLength(T + 1);
    expect(rows[0]!.slice(0, 4)).toEqual(['token', 'id', 'text', 'j0']);
    expect(rows[0]).toHaveLength(3 + T);
    for (let i = 0; i < T; i++) {
      expect(rows[1 + i]!.slice(0, 3)).toEqual([String(i), String(ids[i]), texts[i]]);
      for (let j = 0; j < T; j++) expect(Number(rows[1 + i]![3 + j])).toBe(alpha[i * T + j]);
    }
    const range = causalAbsRange(alpha, T, true);
    const row = matrixRow(alpha, T, 4);
    const rowCsv = parseCsv(toCsv(attentionRowColumns(row, ids, texts, range, true)));
    expect(rowCsv[0]).toEqual(['token', 'id', 'text', 'alpha', 'scaled |alpha|']);
    for (let j = 0; j < T; j++) {
      expect(Number(rowCsv[1 + j]![3])).toBe(row[j]);
      expect(Number(rowCsv[1 + j]![4])).toBe(scaledAbs(row[j]!, range, true));
    }
  });
});

describe('compare', () => {
  it('takes B − A of ‖Δ_t‖ along the alignment, per layer traced in both, with per-layer summaries; the CSV holds it', () => {
    const Ta = 19;
    const Tb = 16;
    // Distinct ids, so the alignment is the one way of pairing them: B is A's first 16 tokens with
    // tokens 3 and 10 replaced (new ids); A's last 3 are deleted.
    const idsA = Array.from({ length: Ta }, (_, i) => 100 + i);
    const idsB = idsA.slice(0, Tb);
    idsB[3] = 7;
    idsB[10] = 8;
    const a = { ids: idsA, layers: [0, 2, 3], deltaNorm: [0, 2, 3].map(() => Float32Array.from({ length: Ta }, () => Math.random() * 3)) };
    const b = { ids: idsB, layers: [0, 1, 2], deltaNorm: [0, 1, 2].map(() => Float32Array.from({ length: Tb }, () => Math.random() * 3)) };
    const cmp = compareScores(a, b);
    expect(cmp.layers).toEqual([0, 2]);
    expect(cmp.tokens).toBe(Ta);
    expect(cmp.edited).toEqual([3, 10, 16, 17, 18]);
    cmp.layers.forEach((layer, k) => {
      const na = a.deltaNorm[a.layers.indexOf(layer)]!;
      const nb = b.deltaNorm[b.layers.indexOf(layer)]!;
      let sumD = 0;
      let best = -1;
      let at = -1;
      for (let t = 0; t < Tb; t++) {
        const d = nb[t]! - na[t]!;
        expect(cmp.diff[k]![t]).toBe(d);
        expect(cmp.a[k]![t]).toBe(na[t]);
        expect(cmp.b[k]![t]).toBe(nb[t]);
        sumD += d;
        if (Math.abs(d) > best) {
          best = Math.abs(d);
          at = t;
        }
      }
      for (let t = Tb; t < Ta; t++) {
        expect(cmp.a[k]![t]).toBe(na[t]);
        expect(cmp.b[k]![t]).toBeNaN();
        expect(cmp.diff[k]![t]).toBeNaN();
      }
      const s = cmp.summaries[k]!;
      expect(s.layer).toBe(layer);
      expect(s.meanDiff).toBeCloseTo(sumD / Tb, 12);
      expect(s.maxAbsDiff).toBe(best);
      expect(s.maxAt).toBe(at);
    });
    // The CSV holds the same numbers, and the alignment.
    const rows = parseCsv(toCsv(compareColumns(cmp, idsA, idsB, idsA.map(String), idsB.map(String))));
    expect(rows).toHaveLength(Ta + 1);
    expect(rows[0]).toEqual(['token', 'id A', 'text A', 'id B', 'text B', 'score A L0', 'score B L0', 'B-A L0', 'score A L2', 'score B L2', 'B-A L2', 'kind', 'position A', 'position B']);
    for (let t = 0; t < Ta; t++) {
      const r = rows[1 + t]!;
      const n = r.map(Number);
      expect(n[1]).toBe(idsA[t]);
      expect(n[5]).toBe(cmp.a[0]![t]);
      expect(n[12]).toBe(t);
      if (t < Tb) {
        expect(n[3]).toBe(idsB[t]);
        expect(n[7]).toBe(n[6]! - n[5]!);
        expect(n[10]).toBe(n[9]! - n[8]!);
        expect(r[11]).toBe(t === 3 || t === 10 ? 'replaced' : 'same');
        expect(n[13]).toBe(t);
      } else {
        expect([r[3], r[4], r[6], r[7], r[11], r[13]]).toEqual(['', '', 'NaN', 'NaN', 'deleted', '']);
      }
    }
  });

  it('maps chart x to positions', () => {
    expect(positionAt(0, 100, 10)).toBe(0);
    expect(positionAt(99.9, 100, 10)).toBe(9);
    expect(positionAt(55, 100, 10)).toBe(5);
    expect(positionAt(100, 100, 10)).toBeNull();
    expect(positionAt(-1, 100, 10)).toBeNull();
  });
});

describe('knockout', () => {
  const V = 9;
  const logits = () => Float64Array.from({ length: V }, () => randn() * 2);
  const topK = (p: Float64Array, k: number) => {
    const ids = Array.from(p.keys()).sort((x, y) => p[y]! - p[x]!).slice(0, k);
    return { ids, texts: ids.map((id) => `t${id}`), probs: ids.map((id) => p[id]!) };
  };

  it('spreads top k over the vocabulary, lists the union of both top lists, and writes the CSV', () => {
    const p = softmax(logits());
    const q = softmax(logits());
    const result: KnockoutResult = {
      token: 4,
      layers: [0],
      baseline: topK(p, 4),
      knocked: topK(q, 4),
      kl: klDivergence(p, q),
      klByPosition: [klDivergence(p, q)],
      totalVariation: totalVariation(p, q),
      baselineTopProbAfter: q[topK(p, 1).ids[0]!]!,
    };
    const dense = denseDistribution(topK(p, V), V);
    expect(Array.from(dense)).toEqual(Array.from(p));
    const shift = probabilityShift(result);
    const union = new Set([...result.baseline.ids, ...result.knocked.ids]);
    expect(shift.map((r) => r.id).sort()).toEqual([...union].sort());
    for (const r of shift) {
      const b = result.baseline.ids.indexOf(r.id);
      const k = result.knocked.ids.indexOf(r.id);
      if (b >= 0) expect(r.before).toBe(p[r.id]);
      else expect(r.before).toBeNaN();
      if (k >= 0) expect(r.after).toBe(q[r.id]);
      else expect(r.after).toBeNaN();
    }
    // Baseline order first.
    expect(shift.slice(0, 4).map((r) => r.id)).toEqual(result.baseline.ids);
    const rows = parseCsv(toCsv(knockoutColumns(result)));
    expect(rows[0]).toEqual(['rank', 'baseline id', 'baseline text', 'baseline p', 'knocked id', 'knocked text', 'knocked p']);
    for (let r = 0; r < 4; r++) {
      const row = rows[1 + r]!;
      expect(Number(row[1])).toBe(result.baseline.ids[r]);
      expect(Number(row[3])).toBe(result.baseline.probs[r]);
      expect(Number(row[4])).toBe(result.knocked.ids[r]);
      expect(Number(row[6])).toBe(result.knocked.probs[r]);
    }
  });
});
