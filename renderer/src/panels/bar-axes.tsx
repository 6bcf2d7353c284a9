/**
 * The axes of an SVG bar chart with one bar per index (the receptive-field and attribution
 * panels): a value axis with ticks and its label on the left, an index axis under the plot with
 * ticks at bar centres and its label, and the baseline (the value axis's 0, or the plot's bottom).
 */
import type { KeyboardEvent, ReactNode } from 'react';
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
  /** Bar i is labelled i + xOffset (a range of tokens). */
  xOffset?: number;
}

export function BarAxes({ margin: M, height: H, plotW, cell, yTicks, y, yLabel, xTicks, xLabel, baseline, xOffset = 0 }: BarAxesProps) {
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
            {i + xOffset}
          </text>
        </g>
      ))}
      <text x={M.left + plotW / 2} y={H + M.top + M.bottom - 3} textAnchor="middle" stroke="none">
        {xLabel}
      </text>
    </g>
  );
}

/**
 * The cursor of a bar chart after a key: ←/→ one bar, PageUp/PageDown ten, Home/End the ends,
 * Escape null (no cursor); undefined when the key does nothing. The first move lands on bar 0.
 */
export function barCursor(cursor: number | null, key: string, count: number): number | null | undefined {
  if (count <= 0) return undefined;
  if (key === 'Escape') return null;
  const step: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, PageDown: 10, PageUp: -10 };
  let next: number;
  if (key in step) next = (cursor ?? -1) + (step[key] as number);
  else if (key === 'Home') next = 0;
  else if (key === 'End') next = count - 1;
  else return undefined;
  return Math.min(count - 1, Math.max(0, next));
}

export interface BarChartProps extends Omit<BarAxesProps, 'plotW' | 'cell'> {
  testId: string;
  label: string;
  /** The svg's width, CSS pixels (its container's, measured by the caller). */
  width: number;
  margin: { left: number; top: number; bottom: number; right: number };
  count: number;
  cursor: number | null;
  onCursor(index: number | null): void;
  /** The bars (and any marks), drawn in the plot's coordinates. */
  children: ReactNode;
  /** Extra data-* attributes on the svg. */
  data?: Record<string, string | number | undefined>;
}

/** An SVG bar chart shell: axes, a focusable plot taking the keyboard (barCursor) and the pointer, the cursor outlined. */
export function BarChart({ testId, label, width, margin: M, height: H, count, cursor, onCursor, children, data = {}, ...axes }: BarChartProps) {
  const plotW = Math.max(10, width - M.left - M.right);
  const cell = count > 0 ? plotW / count : plotW;
  return (
    <svg
      width="100%"
      height={H + M.top + M.bottom}
      role="img"
      tabIndex={0}
      aria-label={label}
      data-testid={testId}
      data-plot-left={M.left}
      data-plot-width={plotW}
      {...Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v]))}
      onKeyDown={(e: KeyboardEvent) => {
        const next = barCursor(cursor, e.key, count);
        if (next === undefined) return;
        e.preventDefault();
        onCursor(next);
      }}
      onPointerMove={(e) => {
        const r = e.currentTarget.getBoundingClientRect();
        const i = Math.floor((e.clientX - r.left - M.left) / cell);
        onCursor(i >= 0 && i < count ? i : null);
      }}
      onPointerLeave={() => onCursor(null)}
      style={{ display: 'block', background: '#11141a', fontSize: 10 }}
    >
      <BarAxes margin={M} height={H} plotW={plotW} cell={cell} {...axes} />
      {children}
      {cursor !== null && cursor < count && <rect x={M.left + cursor * cell} y={M.top} width={Math.max(1, cell)} height={H} fill="none" stroke="#ffffff" strokeOpacity={0.8} />}
    </svg>
  );
}
