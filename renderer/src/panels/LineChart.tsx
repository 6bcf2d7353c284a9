/**
 * A small SVG line chart (no library): one polyline per series over a shared x range (token index),
 * y from the series' finite values (or a fixed range), with axes (nice ticks, chart-scale.ts) and
 * their labels (with units), a legend naming each series' colour, optional horizontal guide lines
 * and a vertical marker. NaN points break the line. Drawn in CSS pixels at its container's width
 * (measured), so text is never stretched.
 * With `onHover`, the pointer over the chart names the token under it, and `hover` (the
 * workspace's linked hovered token) is drawn as a white line.
 * With `figure`, SVG / PNG exports render the chart's data as a publication figure (publish-lines.ts:
 * title, legend, axes with units; no hover line or marker), at ×1, ×2 or ×4.
 */
import { useRef } from 'react';
import { useElementSize } from './chart-axes';
import { niceTicks } from './chart-scale';
import { PlotAxes } from './plot-axes';
import { valueRange } from './selection';
import { lineChartFigure } from './publish-lines';
import { LinePublishControls } from './publish-lines-ui';

export interface LineSeries {
  name: string;
  values: ArrayLike<number>;
  colour: string;
}

export interface LineChartProps {
  series: readonly LineSeries[];
  /** Height of the plot area in CSS pixels (the axes add their own). */
  height?: number;
  /** Fixed y range (default: the finite values' range). */
  yRange?: { min: number; max: number };
  /** Horizontal guide lines at these y values. */
  guides?: readonly number[];
  /** A vertical marker at this x (token index). */
  marker?: number | null;
  label: string;
  testId?: string;
  /** The x axis's name and unit (default: "token"). */
  xLabel?: string;
  /** The y axis's name and unit. */
  yLabel?: string;
  /** The hovered token (linked across the panels), drawn as a white line; null or absent: none. */
  hover?: number | null;
  /** Called with the token index under the pointer (null when it leaves). */
  onHover?(index: number | null): void;
  /** Figure exports: the buttons' label ("Export <label> SVG"), the file name, the title (default: `label` of the chart). */
  figure?: { label: string; name: string; title?: string };
  /** Point i is token xOffset + i (a window of a long trace): the x ticks are absolute. */
  xOffset?: number;
  /** Point i is at x = xOffset + i · xStep (default 1: one point per token); the ticks and the figure follow. */
  xStep?: number;
}

const M = { left: 52, right: 10, top: 6, bottom: 30 };

/** The polyline segments of one series: runs of finite points, as SVG "x,y" lists. */
function segments(values: ArrayLike<number>, x: (i: number) => number, y: (v: number) => number): string[] {
  const out: string[] = [];
  let run: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (Number.isFinite(v)) run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    else if (run.length) {
      out.push(run.join(' '));
      run = [];
    }
  }
  if (run.length) out.push(run.join(' '));
  return out;
}

export function LineChart({ series, height = 80, yRange, guides = [], marker = null, label, testId, xLabel = 'token', yLabel = 'value', hover = null, onHover, figure, xOffset = 0, xStep = 1 }: LineChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const measured = useElementSize(box).width;
  const W = measured > 0 ? measured : 600;
  const count = Math.max(0, ...series.map((s) => s.values.length));
  const all: number[] = [];
  for (const s of series) for (let i = 0; i < s.values.length; i++) all.push(s.values[i] as number);
  const range = yRange ?? valueRange(all, false);
  const span = range.max - range.min || 1;
  const H = height;
  const plotW = Math.max(10, W - M.left - M.right);
  const x = (i: number) => M.left + (count > 1 ? (i / (count - 1)) * plotW : plotW / 2);
  const y = (v: number) => M.top + H - ((v - range.min) / span) * H;
  // Tick positions as (fractional) point indices.
  const xTicks = count > 0 ? niceTicks(xOffset, xOffset + Math.max(0, count - 1) * xStep, Math.max(2, Math.floor(plotW / 70)), true).map((v) => (v - xOffset) / xStep) : [];
  const yValues = niceTicks(range.min, range.max, Math.max(2, Math.floor(H / 22)));
  const total = H + M.top + M.bottom;
  return (
    <div ref={box} style={{ fontSize: 11 }}>
      <svg
        width="100%"
        height={total}
        role="img"
        aria-label={label}
        data-testid={testId}
        data-hover-token={hover ?? undefined}
        // Where the plot area lies in the svg (CSS pixels): token i is at plot-left + i / (count − 1) × plot-width.
        data-plot-left={M.left}
        data-plot-width={plotW}
        style={{ display: 'block', background: '#11141a', fontSize: 10 }}
        onPointerMove={
          onHover &&
          ((event) => {
            const box = event.currentTarget.getBoundingClientRect();
            // The inverse of x(i) below (the svg is drawn in CSS pixels).
            const i = count > 1 ? Math.round(((event.clientX - box.left - M.left) / plotW) * (count - 1)) : 0;
            onHover(count > 0 ? Math.min(count - 1, Math.max(0, i)) : null);
          })
        }
        onPointerLeave={onHover && (() => onHover(null))}
      >
        <PlotAxes margin={M} height={H} plotW={plotW} yTicks={yValues} y={y} yLabel={yLabel} xTicks={xTicks} x={x} xLabel={xLabel} xOffset={xOffset} xStep={xStep} testId={testId} />
        {guides.map((g) => (
          <line key={g} x1={M.left} x2={M.left + plotW} y1={y(g)} y2={y(g)} stroke="#666" strokeDasharray="6 4" />
        ))}
        {hover !== null && hover < count && <line x1={x(hover)} x2={x(hover)} y1={M.top} y2={M.top + H} stroke="#ffffff" strokeOpacity={0.6} />}
        {marker !== null && <line x1={x(marker)} x2={x(marker)} y1={M.top} y2={M.top + H} stroke="#ffb000" />}
        {series.map((s) =>
          segments(s.values, x, y).map((points, k) => <polyline key={`${s.name}-${k}`} data-series={s.name} points={points} fill="none" stroke={s.colour} strokeWidth={1.5} />),
        )}
      </svg>
      <div className="muted" data-testid={testId ? `${testId}-legend` : undefined} style={{ display: 'flex', gap: 12, flexWrap: 'wrap', paddingLeft: M.left }}>
        {series.map((s) => (
          <span key={s.name} data-series={s.name} data-colour={s.colour}>
            <span aria-hidden style={{ display: 'inline-block', width: 14, height: 3, background: s.colour, verticalAlign: 'middle', marginRight: 4 }} />
            {s.name}
          </span>
        ))}
      </div>
      {figure && (
        <div className="actions" style={{ fontSize: 12, paddingLeft: M.left, flexWrap: 'wrap' }}>
          <LinePublishControls
            label={figure.label}
            name={figure.name}
            disabled={count === 0}
            build={() => lineChartFigure({ title: figure.title ?? label, series, xLabel, yLabel, ...(yRange ? { yRange } : {}), guides, ...(xStep !== 1 || xOffset !== 0 ? { xOffset, xStep } : {}) })}
          />
        </div>
      )}
    </div>
  );
}
