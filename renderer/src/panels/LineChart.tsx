/**
 * A small SVG line chart (no library): one polyline per series over a shared x range (token index),
 * y from the series' finite values (or a fixed range), optional horizontal guide lines and a
 * vertical marker. NaN points break the line. Stretched to its container's width. With `onHover`,
 * the pointer over the chart names the token under it, and `hover` (the workspace's linked
 * hovered token) is drawn as a white line.
 */
import { valueRange } from './selection';

export interface LineSeries {
  name: string;
  values: ArrayLike<number>;
  colour: string;
}

export interface LineChartProps {
  series: readonly LineSeries[];
  height?: number;
  /** Fixed y range (default: the finite values' range). */
  yRange?: { min: number; max: number };
  /** Horizontal guide lines at these y values. */
  guides?: readonly number[];
  /** A vertical marker at this x (token index). */
  marker?: number | null;
  label: string;
  testId?: string;
  /** The hovered token (linked across the panels), drawn as a white line; null or absent: none. */
  hover?: number | null;
  /** Called with the token index under the pointer (null when it leaves). */
  onHover?(index: number | null): void;
}

const W = 1000;

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

export function LineChart({ series, height = 80, yRange, guides = [], marker = null, label, testId, hover = null, onHover }: LineChartProps) {
  const count = Math.max(0, ...series.map((s) => s.values.length));
  const all: number[] = [];
  for (const s of series) for (let i = 0; i < s.values.length; i++) all.push(s.values[i] as number);
  const range = yRange ?? valueRange(all, false);
  const span = range.max - range.min || 1;
  const H = height;
  const x = (i: number) => (count > 1 ? (i / (count - 1)) * (W - 4) + 2 : W / 2);
  const y = (v: number) => H - 2 - ((v - range.min) / span) * (H - 4);
  return (
    <div style={{ fontSize: 11 }}>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        width="100%"
        height={H}
        role="img"
        aria-label={label}
        data-testid={testId}
        data-hover-token={hover ?? undefined}
        style={{ display: 'block', background: '#11141a' }}
        onPointerMove={
          onHover &&
          ((event) => {
            const box = event.currentTarget.getBoundingClientRect();
            // The inverse of x(i) below, from CSS pixels to the viewBox's units.
            const i = count > 1 ? Math.round(((((event.clientX - box.left) / box.width) * W - 2) / (W - 4)) * (count - 1)) : 0;
            onHover(count > 0 ? Math.min(count - 1, Math.max(0, i)) : null);
          })
        }
        onPointerLeave={onHover && (() => onHover(null))}
      >
        {guides.map((g) => (
          <line key={g} x1={0} x2={W} y1={y(g)} y2={y(g)} stroke="#666" strokeDasharray="6 4" vectorEffect="non-scaling-stroke" />
        ))}
        {hover !== null && hover < count && <line x1={x(hover)} x2={x(hover)} y1={0} y2={H} stroke="#ffffff" strokeOpacity={0.6} vectorEffect="non-scaling-stroke" />}
        {marker !== null && <line x1={x(marker)} x2={x(marker)} y1={0} y2={H} stroke="#ffb000" vectorEffect="non-scaling-stroke" />}
        {series.map((s) =>
          segments(s.values, x, y).map((points, k) => (
            <polyline key={`${s.name}-${k}`} data-series={s.name} points={points} fill="none" stroke={s.colour} strokeWidth={1.5} vectorEffect="non-scaling-stroke" />
          )),
        )}
      </svg>
      <div className="muted" style={{ display: 'flex', gap: 12 }}>
        {series.map((s) => (
          <span key={s.name}>
            <span style={{ display: 'inline-block', width: 10, height: 2, background: s.colour, verticalAlign: 'middle', marginRight: 4 }} />
            {s.name}
          </span>
        ))}
        <span>
          y {range.min.toPrecision(3)} … {range.max.toPrecision(3)}
        </span>
      </div>
    </div>
  );
}
