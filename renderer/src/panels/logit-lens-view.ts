/**
 * What the logit-lens panel shows of a LogitLensResult (app/analysis/logit-lens.ts): a cell's
 * readout (top tokens with probabilities, the target's rank and probability), the CSV (one row per
 * (layer, position)), and the publication heatmap (positions × layers of the target's probability).
 */
import type { LogitLensResult } from '../../../app/engine/protocol';
import type { CsvColumn } from './csv';
import type { FigureSpec } from './publish';
import { blockLabel, type Blocks } from './blocks';

/** A token id as shown: the model's label (studio.json) when it has one, else the engine's text. */
export const lensText = (result: LogitLensResult, id: number, labels?: readonly string[]) => labels?.[id] ?? result.texts[id] ?? String(id);

export interface LensCell {
  layer: number;
  /** The absolute position in the prompt. */
  position: number;
  top: { id: number; text: string; prob: number }[];
  target: { id: number; text: string; rank: number; prob: number };
}

export function lensCell(result: LogitLensResult, layerIndex: number, column: number, labels?: readonly string[]): LensCell {
  const n = result.to - result.from;
  const c = layerIndex * n + column;
  const top = Array.from({ length: result.k }, (_, j) => {
    const id = result.topIds[c * result.k + j] as number;
    return { id, text: lensText(result, id, labels), prob: result.topProbs[c * result.k + j] as number };
  });
  const id = result.targetIds[column] as number;
  return { layer: result.layers[layerIndex] as number, position: result.from + column, top, target: { id, text: lensText(result, id, labels), rank: result.targetRank[c] as number, prob: result.targetProb[c] as number } };
}

/** One row per (layer, position), layers outer. */
export function lensColumns(result: LogitLensResult, labels?: readonly string[]): CsvColumn[] {
  const n = result.to - result.from;
  const cells = result.layers.flatMap((_, l) => Array.from({ length: n }, (_, p) => lensCell(result, l, p, labels)));
  const columns: CsvColumn[] = [
    { name: 'layer', values: cells.map((c) => c.layer) },
    { name: 'position', values: cells.map((c) => c.position) },
    { name: 'target_id', values: cells.map((c) => c.target.id) },
    { name: 'target_text', values: cells.map((c) => c.target.text) },
    { name: 'target_rank', values: cells.map((c) => c.target.rank) },
    { name: 'target_prob', values: cells.map((c) => c.target.prob) },
  ];
  for (let j = 0; j < result.k; j++) {
    columns.push({ name: `top${j + 1}_id`, values: cells.map((c) => c.top[j]?.id ?? -1) });
    columns.push({ name: `top${j + 1}_text`, values: cells.map((c) => c.top[j]?.text ?? '') });
    columns.push({ name: `top${j + 1}_prob`, values: cells.map((c) => c.top[j]?.prob ?? NaN) });
  }
  return columns;
}

/** The target's probability as [positions, layers] row-major (the heatmap figure's data). */
export function lensMatrix(result: LogitLensResult): Float32Array {
  const n = result.to - result.from;
  const L = result.layers.length;
  const out = new Float32Array(n * L);
  for (let l = 0; l < L; l++) for (let p = 0; p < n; p++) out[p * L + l] = result.targetProb[l * n + p] as number;
  return out;
}

export function lensFigure(result: LogitLensResult, texts: readonly string[], blocks?: Blocks): { spec: FigureSpec; data: Float32Array } {
  const n = result.to - result.from;
  const L = result.layers.length;
  return {
    spec: {
      title: `Logit lens: probability of ${result.target === 'final' ? 'the final prediction' : `token ${result.target}`} from each layer’s residual stream`,
      width: 900,
      height: 520,
      view: { x: { start: 0, count: n }, y: { start: 0, count: L } },
      tokens: n,
      channels: L,
      texts: texts.slice(result.from, result.to),
      tokenOffset: result.from,
      xLabel: 'position in the prompt (next-token prediction after it)',
      yLabel: 'layer (residual stream after the block)',
      yNames: result.layers.map((l) => blockLabel(blocks, l)),
      range: { min: 0, max: 1 },
      log: false,
      colormap: 'viridis',
      colorbarLabel: 'target probability (norm_f + LM head)',
    },
    data: lensMatrix(result),
  };
}
