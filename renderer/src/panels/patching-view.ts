/**
 * What the patching panel shows of a PatchingResult (app/analysis/patching.ts): the colour range
 * (symmetric around 0, at least ±1, so that 1 — fully restored — is always the same red), the
 * heatmap figure's data ([tokens, layers]), the CSV (one row per (layer, token)) and the cell readout.
 */
import type { PatchingResult } from '../../../app/engine/protocol';
import type { Range } from './chart-scale';
import type { CsvColumn } from './csv';
import type { FigureSpec } from './publish';
import { blockLabel, type Blocks } from './blocks';

/** ±max(1, the largest finite |restored|). */
export function patchRange(result: PatchingResult): Range {
  let m = 1;
  for (const v of result.restored) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  return { min: -m, max: m };
}

/** [patched tokens, layers] row-major (the figure's cells: tokens on x, layers on y). */
export function patchMatrix(result: PatchingResult): Float32Array {
  const T = result.to - result.from;
  const L = result.layers.length;
  const out = new Float32Array(T * L);
  for (let l = 0; l < L; l++) for (let t = 0; t < T; t++) out[t * L + l] = result.restored[l * T + t] as number;
  return out;
}

/** One row per (layer, patched token); `texts` are the whole prompt's. */
export function patchColumns(result: PatchingResult, texts: readonly string[]): CsvColumn[] {
  const n = result.to - result.from;
  const cells = result.layers.flatMap((layer, l) => Array.from({ length: n }, (_, i) => ({ layer, t: result.from + i, c: l * n + i })));
  return [
    { name: 'layer', values: cells.map((x) => x.layer) },
    { name: 'token', values: cells.map((x) => x.t) },
    { name: 'text', values: cells.map((x) => texts[x.t] ?? '') },
    { name: 'patched_logit_diff', values: cells.map((x) => result.patchedDiff[x.c] as number) },
    { name: 'restored_fraction', values: cells.map((x) => result.restored[x.c] as number) },
  ];
}

export function patchFigure(result: PatchingResult, texts: readonly string[], answer: string, foil: string, blocks?: Blocks): { spec: FigureSpec; data: Float32Array } {
  const T = result.to - result.from;
  const L = result.layers.length;
  return {
    spec: {
      title: `Patching (${result.site === 'state' ? 'state after each token' : result.site === 'residual' ? 'residual stream' : 'mixer output'}): fraction of logit(“${answer}”) − logit(“${foil}”) restored`,
      width: 900,
      height: 520,
      view: { x: { start: 0, count: T }, y: { start: 0, count: L } },
      tokens: T,
      channels: L,
      texts: texts.slice(result.from, result.to),
      tokenOffset: result.from,
      xLabel: result.site === 'state' ? 'token t (state after it patched)' : 'token t (patched at its position)',
      yLabel: 'layer',
      yNames: result.layers.map((l) => blockLabel(blocks, l)),
      range: patchRange(result),
      log: false,
      colormap: 'diverging',
      colorbarLabel: 'restored fraction of the logit difference',
    },
    data: patchMatrix(result),
  };
}
