/**
 * The axes of an SVG chart (the line chart, the bar charts): a value axis with ticks and its label
 * on the left, an index axis under the plot with ticks at x(i) and its label, and the baseline
 * (the value axis's 0, or the plot's bottom). Each axis is a group tagged `<testId>-y-axis` /
 * `<testId>-x-axis` with its label in data-label.
 */
import { formatTick } from './chart-scale';

export interface PlotAxesProps {
  margin: { left: number; top: number; bottom: number };
  /** Plot area height and width, CSS pixels. */
  height: number;
  plotW: number;
  yTicks: readonly number[];
  /** Value → y pixel. */
  y(value: number): number;
  yLabel: string;
  /** Index positions with a tick (relative to xOffset). */
  xTicks: readonly number[];
  /** Index → x pixel. */
  x(index: number): number;
  xLabel: string;
  /** Where the baseline runs (default: the plot's bottom). */
  baseline?: number;
  /** Index i is labelled xOffset + i·xStep (a range of tokens; points every xStep tokens). */
  xOffset?: number;
  xStep?: number;
  testId?: string | undefined;
}

export function PlotAxes({ margin: M, height: H, plotW, yTicks, y, yLabel, xTicks, x, xLabel, baseline, xOffset = 0, xStep = 1, testId }: PlotAxesProps) {
  const step = yTicks.length > 1 ? (yTicks[1] as number) - (yTicks[0] as number) : undefined;
  return (
    <>
      <g data-testid={testId ? `${testId}-y-axis` : undefined} data-label={yLabel} fill="#8b93a5" stroke="#8b93a5">
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
      </g>
      <g data-testid={testId ? `${testId}-x-axis` : undefined} data-label={xLabel} fill="#8b93a5" stroke="#8b93a5">
        <line x1={M.left} x2={M.left + plotW} y1={baseline ?? M.top + H} y2={baseline ?? M.top + H} strokeOpacity={0.6} />
        {xTicks.map((i) => (
          <g key={i}>
            <line x1={x(i)} x2={x(i)} y1={M.top + H} y2={M.top + H + 4} strokeOpacity={0.6} />
            <text x={x(i)} y={M.top + H + 14} textAnchor="middle" stroke="none">
              {xStep === 1 ? i + xOffset : formatTick(xOffset + i * xStep)}
            </text>
          </g>
        ))}
        <text x={M.left + plotW / 2} y={H + M.top + M.bottom - 3} textAnchor="middle" stroke="none">
          {xLabel}
        </text>
      </g>
    </>
  );
}
