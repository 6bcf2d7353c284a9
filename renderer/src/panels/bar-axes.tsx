/**
 * An SVG bar chart with one bar per index (the receptive-field and attribution panels, the token
 * strip's attribution bars): PlotAxes with ticks at bar centres, keyboard and pointer cursor.
 */
import type { KeyboardEvent, ReactNode } from 'react';
import { niceTicks } from './chart-scale';
import { PlotAxes, type PlotAxesProps } from './plot-axes';

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

export interface BarChartProps extends Omit<PlotAxesProps, 'plotW' | 'x' | 'testId' | 'xTicks'> {
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
  const off = axes.xOffset ?? 0;
  const xTicks = count > 0 ? niceTicks(off, off + count - 1, Math.max(2, Math.floor(plotW / 70)), true).map((v) => v - off) : [];
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
      <PlotAxes margin={M} height={H} plotW={plotW} x={(i) => M.left + (i + 0.5) * cell} xTicks={xTicks} testId={testId} {...axes} />
      {children}
      {cursor !== null && cursor < count && <rect x={M.left + cursor * cell} y={M.top} width={Math.max(1, cell)} height={H} fill="none" stroke="#ffffff" strokeOpacity={0.8} />}
    </svg>
  );
}
