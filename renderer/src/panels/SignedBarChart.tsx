/**
 * A bar per token of a signed (or positive) value around a zero baseline (BarChart: axes with
 * units, keyboard, pointer): token attribution's Δ log p in its panel and in the token strip, and
 * hidden attention's row beside it. Bar i is token xOffset + i; NaN draws no bar. The cursor is
 * the workspace's hovered token (absolute), so the readouts of every panel follow it.
 */
import { useMemo } from 'react';
import { niceTicks } from './chart-scale';
import { BarChart } from './bar-axes';

export interface SignedBarChartProps {
  testId: string;
  label: string;
  values: ArrayLike<number>;
  /** Bar i is token xOffset + i. */
  xOffset?: number;
  width: number;
  height: number;
  yLabel: string;
  xLabel: string;
  /** Colours of the bars below and above 0, and their series names (data-series). */
  colours: { neg: string; pos: string };
  names?: { neg: string; pos: string };
  /** The hovered token (absolute), or null. */
  hover: number | null;
  onHover(token: number | null): void;
  data?: Record<string, string | number | undefined>;
}

const M = { left: 52, right: 10, top: 8, bottom: 30 };

export function SignedBarChart({ testId, label, values, xOffset: off = 0, width, height: H, yLabel, xLabel, colours, names = { neg: 'negative', pos: 'positive' }, hover, onHover, data = {} }: SignedBarChartProps) {
  const count = values.length;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < count; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  }
  const span = hi - lo || 1;
  const plotW = Math.max(10, width - M.left - M.right);
  const cell = count > 0 ? plotW / count : plotW;
  const y = (v: number) => M.top + H - ((Math.min(hi, Math.max(lo, v)) - lo) / span) * H;
  const bars = useMemo(() => {
    const neg: string[] = [];
    const pos: string[] = [];
    const y0 = M.top + H - ((0 - lo) / span) * H;
    for (let j = 0; j < count; j++) {
      const v = values[j] as number;
      if (!Number.isFinite(v)) continue;
      const y1 = M.top + H - ((v - lo) / span) * H;
      (v < 0 ? neg : pos).push(`M${(M.left + j * cell + cell * 0.1).toFixed(2)},${y0.toFixed(2)}V${y1.toFixed(2)}h${Math.max(0.5, cell * 0.8).toFixed(2)}V${y0.toFixed(2)}z`);
    }
    return { neg: neg.join(''), pos: pos.join('') };
  }, [values, count, lo, span, cell, H]);
  const cursor = hover !== null && hover >= off && hover < off + count ? hover - off : null;
  return (
    <BarChart
      testId={testId}
      label={label}
      width={width}
      margin={M}
      height={H}
      count={count}
      cursor={cursor}
      onCursor={(i) => onHover(i === null ? null : off + i)}
      data={{ 'hover-token': hover ?? undefined, ...data }}
      xOffset={off}
      yTicks={niceTicks(lo, hi, Math.max(2, Math.floor(H / 24)))}
      y={y}
      yLabel={yLabel}
      xLabel={xLabel}
      baseline={y(0)}
    >
      <path d={bars.neg} fill={colours.neg} data-series={names.neg} />
      <path d={bars.pos} fill={colours.pos} data-series={names.pos} />
    </BarChart>
  );
}
