/**
 * What the receptive-field panel shows of app/analysis/receptive-field.ts: per layer of a trace
 * view, the field (null where the view holds no Δ of that layer: a long trace's window not
 * fetched), the per-layer summary row (global / local counts, median reach, the focus channels'
 * mean reach against the others'), the CSV columns (one row per channel in rank order) and the
 * publication figure (bars of reach by rank: global, local, focus channels).
 */
import { receptiveField, reachByGroup, type ReceptiveField } from '../../../app/analysis/receptive-field';
import type { TraceView } from './long-trace';
import type { CsvColumn } from './csv';
import { FIGURE_WIDTH, type LineFigureSpec } from './publish-lines';

/** The field of one layer of a view (by its index in `layers`), or null when the view holds no Δ of it. */
export function layerField(view: TraceView, layerIndex: number, threshold: number): ReceptiveField | null {
  const delta = view.delta[layerIndex];
  const A = view.A[layerIndex];
  const T = view.ids.length;
  if (!delta || !A || T === 0 || delta.length !== T * view.deltaWidth) return null;
  return receptiveField(delta, T, view.deltaWidth, A, view.aStates, threshold);
}

export interface FieldSummary {
  layer: number;
  global: number;
  local: number;
  /** Median reach over the units, tokens. */
  medianReach: number;
  /** Mean reach of the focus channels and of the others (NaN when there are none). */
  focusReach: number;
  otherReach: number;
}

export function fieldSummary(rf: ReceptiveField, layer: number, focus: readonly number[]): FieldSummary {
  const sorted = Int32Array.from(rf.reach).sort();
  const mid = sorted.length >> 1;
  const medianReach = sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  const groups = reachByGroup(rf, focus);
  return { layer, global: rf.globalCount, local: rf.width - rf.globalCount, medianReach, focusReach: groups.inside, otherReach: groups.outside };
}

/** One row per unit in rank order (longest reach first). */
export function fieldColumns(rf: ReceptiveField, unit: 'channel' | 'head', focus: readonly number[]): CsvColumn[] {
  const chosen = new Set(focus);
  const order = [...rf.order];
  return [
    { name: 'rank', values: order.map((_, i) => i) },
    { name: unit, values: order },
    { name: 'reach_tokens', values: order.map((d) => rf.reach[d] as number) },
    { name: 'kind', values: order.map((d) => (rf.global[d] ? 'global' : 'local')) },
    { name: 'retention_over_window', values: order.map((d) => Math.exp(rf.logRetention[d] as number)) },
    { name: 'log_retention_nats', values: order.map((d) => rf.logRetention[d] as number) },
    { name: 'delta_sum', values: order.map((d) => rf.deltaSum[d] as number) },
    { name: 'slowest_decay_rate', values: order.map((d) => rf.decayRate[d] as number) },
    { name: 'focus', values: order.map((d) => (chosen.has(d) ? 1 : 0)) },
  ];
}

/** The figure: reach per unit in rank order, bars coloured global / local, the focus channels as their own series. */
export function fieldFigure(rf: ReceptiveField, layer: number, unit: 'channel' | 'head', focus: readonly number[]): LineFigureSpec {
  const chosen = new Set(focus);
  const order = [...rf.order];
  const pick = (keep: (d: number) => boolean) => order.map((d) => (keep(d) ? (rf.reach[d] as number) : NaN));
  return {
    title: `Receptive field per ${unit}, layer ${layer}: tokens back whose write keeps ≥ ${rf.threshold} (slowest state, ${rf.tokens}-token window)`,
    width: FIGURE_WIDTH,
    height: 420,
    xLabel: `${unit}s, sorted by reach (rank)`,
    x: { kind: 'index', count: rf.width },
    plots: [
      {
        kind: 'bars',
        yLabel: 'reach (tokens)',
        yRange: { min: 0, max: rf.tokens },
        guides: [rf.tokens],
        series: [
          { name: `global (reads the whole window)`, values: pick((d) => rf.global[d] === 1 && !chosen.has(d)), colour: '#2e7d32' },
          { name: 'local', values: pick((d) => rf.global[d] === 0 && !chosen.has(d)), colour: '#616161' },
          ...(chosen.size ? [{ name: 'focus channels (studio.json)', values: pick((d) => chosen.has(d)), colour: '#e64a19' }] : []),
        ],
      },
    ],
  };
}
