/**
 * The axes of an SVG bar chart with one bar per index (the receptive-field and attribution
 * panels): a value axis with ticks and its label on the left, an index axis under the plot with
 * ticks at bar centres and its label, and the baseline (the value axis's 0, or the plot's bottom).
 */
import { formatTick } from './chart-scale';

export interface BarAxesProps {
  margin: { left: number; top: number; bottom: number };
  /** Plot area height and width, CSS pixels. */
  height: number;
  plotW: number;
  /** Width of one index's cell. */
  cell: number;
  yTicks: readonly number[];
  /** Value → y pixel. */
  y(value: number): number;
  yLabel: string;
  xTicks: readonly number[];
  xLabel: string;
  /** Where the baseline runs (default: the plot's bottom). */
  baseline?: number;
}

export function BarAxes({ margin: M, height: H, plotW, cell, yTicks, y, yLabel, xTicks, xLabel, baseline }: BarAxesProps) {
  const step = yTicks.length > 1 ? (yTicks[1] as number) - (yTicks[0] as number) : undefined;
  return (
    <g fill="#8b93a5" stroke="#8b93a5">
      <line x1={M.left} x2={M.left} y1={M.top} y2={M.top + H} strokeOpacity={0.6} />
      {yTicks.map((v) => (
        <g key={v}>
          <line x1={M.left - 4} x2={M.left} y1={y(v)} y2={y(v)} strokeOpacity={0.6} />
          <text x={M.left - 6} y={y(v)} dominantBaseline="middle" textAnchor="end" stroke="none">
            {formatTick(v, step)}
          </text>
        </g>
      ))}
      <text x={10} y={M.top + H / 2} transform={`rotate(-90 10 ${M.top + H / 2})`} textAnchor="middle" dominantBaseline="middle" stroke="none">
        {yLabel}
      </text>
      <line x1={M.left} x2={M.left + plotW} y1={baseline ?? M.top + H} y2={baseline ?? M.top + H} strokeOpacity={0.6} />
      {xTicks.map((i) => (
        <g key={i}>
          <line x1={M.left + (i + 0.5) * cell} x2={M.left + (i + 0.5) * cell} y1={M.top + H} y2={M.top + H + 4} strokeOpacity={0.6} />
          <text x={M.left + (i + 0.5) * cell} y={M.top + H + 14} textAnchor="middle" stroke="none">
            {i}
          </text>
        </g>
      ))}
      <text x={M.left + plotW / 2} y={H + M.top + M.bottom - 3} textAnchor="middle" stroke="none">
        {xLabel}
      </text>
    </g>
  );
}
