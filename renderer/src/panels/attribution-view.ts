/**
 * What the attribution panel shows of an AttributionResult (app/analysis/attribution.ts): the CSV
 * (one row per token), the bar figure, and the comparison with hidden attention — Spearman's rank
 * correlation between the knockout effect (−Δ log p: how much filtering token j lowers the target)
 * and α_{T−1, j}, the last token's hidden attention to token j.
 */
import type { AttributionResult } from '../../../app/engine/protocol';
import type { CsvColumn } from './csv';
import { FIGURE_COLOURS, FIGURE_WIDTH, type LineFigureSpec } from './publish-lines';

/** Ranks 1 … n, ties given their mean rank. */
export function ranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) out[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Spearman's ρ: Pearson's correlation of the ranks; NaN with fewer than 2 values, a constant side, or a non-finite value. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError(`spearman: ${a.length} and ${b.length} values`);
  if (a.length < 2 || ![...a, ...b].every(Number.isFinite)) return NaN;
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (a.length + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = ra[i]! - mean;
    const y = rb[i]! - mean;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : NaN;
}

/** The attribution per token of a strip of `tokens` tokens: Δ log p of token j at j, NaN outside the attributed tokens [from, to). */
export function stripAttribution(result: AttributionResult, tokens: number): Float64Array {
  const out = new Float64Array(tokens).fill(NaN);
  result.logProbChange.forEach((v, i) => {
    if (result.from + i < tokens) out[result.from + i] = v;
  });
  return out;
}

/** One row per filtered token; `texts` are the whole prompt's, `attention` is over the filtered tokens. */
export function attributionColumns(result: AttributionResult, texts: readonly string[], attention?: ArrayLike<number> | null): CsvColumn[] {
  const T = result.logProbChange.length;
  return [
    { name: 'token', values: Array.from({ length: T }, (_, j) => result.from + j) },
    { name: 'text', values: Array.from({ length: T }, (_, j) => texts[result.from + j] ?? '') },
    { name: 'log_prob_change_nats', values: result.logProbChange },
    { name: 'target_prob_after', values: result.probAfter },
    { name: 'kl_nats', values: result.kl },
    ...(attention ? [{ name: 'hidden_attention_last_row', values: Array.from({ length: T }, (_, j) => attention[j] as number) }] : []),
  ];
}

/** The bars of the attribution; with `attention`, hidden attention's row of the last token as bars under them (same tokens). */
export function attributionFigure(result: AttributionResult, targetText: string, attention: { values: ArrayLike<number>; layer: number } | null = null): LineFigureSpec {
  return {
    title: `Effect of filtering each token (Δ_j := 0 in layer${result.layers.length === 1 ? '' : 's'} ${result.layers.join(', ')}) on p(“${targetText}”) after the last token`,
    width: FIGURE_WIDTH,
    height: attention ? 600 : 420,
    xLabel: 'filtered token j (position in the prompt)',
    x: { kind: 'category', names: result.logProbChange.map((_, i) => String(result.from + i)) },
    plots: [
      { kind: 'bars', yLabel: 'Δ log p(target), nats', series: [{ name: 'log q(target) − log p(target)', values: result.logProbChange, colour: FIGURE_COLOURS.after }] },
      ...(attention ? [{ kind: 'bars' as const, yLabel: 'α(T−1, j)', weight: 0.6, series: [{ name: `hidden attention of the last token, layer ${attention.layer} (mean over channels)`, values: attention.values, colour: FIGURE_COLOURS.before }] }] : []),
    ],
  };
}
