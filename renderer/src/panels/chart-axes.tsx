/**
 * Axes and colour bars around a heatmap canvas (the canvas is the plot area, so pixel → cell
 * mapping is unchanged): a y axis on the left (channel, state, layer or row ticks and a label), a
 * token axis underneath (token text when zoomed in enough for it to fit, indices otherwise:
 * chart-scale.ts tokenAxisTicks) and a colour bar on the right with its values (log or linear,
 * chart-scale.ts scaleTicks). Ticks are placed in percent of the plot, labels are thinned for the
 * plot's measured size. `HeatmapCursor` outlines the keyboard cursor's cell over the plot.
 */
import { useEffect, useRef, useState, type CSSProperties, type ReactNode, type RefObject } from 'react';
import { colormapCss, type ColormapName } from './colormaps';
import { groupStateTicks, indexTicks, scaleTicks, thinLabels, tokenAxisTicks, visibleText, type AxisTick, type Range } from './chart-scale';
import type { TokenView } from './selection';

/** The CSS pixel size of an element, kept current by a ResizeObserver. */
export function useElementSize(ref: RefObject<HTMLElement | null>): { width: number; height: number } {
  const [size, setSize] = useState({ width: 0, height: 0 });
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const update = () => setSize((s) => (s.width === el.clientWidth && s.height === el.clientHeight ? s : { width: el.clientWidth, height: el.clientHeight }));
    update();
    const observer = new ResizeObserver(update);
    observer.observe(el);
    return () => observer.disconnect();
  }, [ref]);
  return size;
}

export interface YAxisSpec {
  label: string;
  view: TokenView;
  total: number;
  /** Row names (the layer overview) instead of indices. */
  names?: readonly string[];
  /** The row to mark (the selected layer). */
  selected?: number;
  /** Token texts for rows that are tokens (hidden attention): shown when each row has room. */
  texts?: readonly string[];
  /** Rows that are `count` groups of `size` states (Mamba-2's B and C): ticks name the group (groupStateTicks). */
  groups?: { count: number; size: number };
}

export interface XAxisSpec {
  label?: string;
  view: TokenView;
  total: number;
  texts: readonly string[] | null;
  /** Cell i is token offset + i (a window of a long trace): index labels are absolute. */
  offset?: number;
}

export interface ColorbarSpec {
  label: string;
  range: Range;
  log: boolean;
  colormap: ColormapName;
}

const LEFT = 64;
const RIGHT = 84;
const BOTTOM = 30;
const BOTTOM_NO_LABEL = 16;
const FONT: CSSProperties = { fontSize: 10, fontFamily: 'ui-sans-serif, system-ui, sans-serif' };

/** y ticks for a plot `height` pixels tall: row names thinned, or nice indices. */
function yTicks(y: YAxisSpec, height: number): (AxisTick & { strong?: boolean })[] {
  if (y.texts && !y.names && height / y.view.count >= 12) return yTicks({ ...y, names: y.texts.map((t) => visibleText(t, 8)) }, height);
  if (y.names) {
    const cands: (AxisTick & { strong?: boolean })[] = [];
    for (let i = Math.max(0, Math.floor(y.view.start)); i < Math.min(y.total, Math.ceil(y.view.start + y.view.count)); i++) {
      cands.push({ index: i, t: (i + 0.5 - y.view.start) / y.view.count, label: y.names[i] ?? String(i), strong: i === y.selected });
    }
    const pinned = cands.findIndex((c) => c.strong);
    return thinLabels(
      cands.map((c) => ({ centre: c.t * height, size: 11 })),
      1,
      pinned >= 0 ? pinned : undefined,
    ).map((k) => cands[k] as AxisTick);
  }
  if (y.groups && y.groups.count > 1) return groupStateTicks(y.view, height, y.groups.count, y.groups.size, 28);
  return indexTicks(y.view, height, y.total, 28);
}

export interface HeatmapAxesProps {
  testId: string;
  x: XAxisSpec;
  y: YAxisSpec;
  colorbar: ColorbarSpec;
  /** The canvas (drawn over the whole plot area) and overlays. */
  children: ReactNode;
  style?: CSSProperties;
  /** Height of the plot area (CSS); default: grow with the container. */
  plotHeight?: number;
}

export function HeatmapAxes({ testId, x, y, colorbar, children, style, plotHeight }: HeatmapAxesProps) {
  const plot = useRef<HTMLDivElement>(null);
  const size = useElementSize(plot);
  const xt = tokenAxisTicks(x.view, size.width, x.texts, x.total, x.offset);
  const yt = yTicks(y, size.height);
  const bar = scaleTicks(colorbar.range, colorbar.log, Math.max(2, Math.min(6, Math.floor(size.height / 24))));
  const bottom = x.label ? BOTTOM : BOTTOM_NO_LABEL;
  const stops = Array.from({ length: 11 }, (_, k) => `${colormapCss(colorbar.colormap, k / 10)} ${k * 10}%`).join(', ');
  return (
    <div
      data-testid={`${testId}-axes`}
      style={{
        display: 'grid',
        gridTemplateColumns: `${LEFT}px minmax(0, 1fr) ${RIGHT}px`,
        gridTemplateRows: `${plotHeight !== undefined ? `${plotHeight}px` : 'minmax(0, 1fr)'} ${bottom}px`,
        ...FONT,
        ...style,
      }}
    >
      <div data-testid={`${testId}-y-axis`} data-label={y.label} style={{ position: 'relative', minHeight: 0 }}>
        <div
          style={{ position: 'absolute', left: 0, top: 0, bottom: 0, width: 14, writingMode: 'vertical-rl', transform: 'rotate(180deg)', textAlign: 'center', whiteSpace: 'nowrap', overflow: 'hidden' }}
          className="muted"
          title={y.label}
        >
          {size.height >= 40 && !y.names ? y.label : ''}
        </div>
        <svg aria-hidden width="100%" height="100%" style={{ position: 'absolute', inset: 0, overflow: 'visible', pointerEvents: 'none' }}>
          {yt.map((k) => (
            <g key={k.index} data-tick={k.index}>
              <line x1={LEFT - 4} x2={LEFT} y1={`${k.t * 100}%`} y2={`${k.t * 100}%`} stroke="currentColor" strokeOpacity={0.6} />
              <text
                x={LEFT - 6}
                y={`${k.t * 100}%`}
                dominantBaseline="middle"
                textAnchor="end"
                fill="currentColor"
                fontWeight={'strong' in k && k.strong ? 700 : 400}
                data-selected={'strong' in k && k.strong ? 'true' : undefined}
              >
                {'strong' in k && k.strong ? `▶ ${k.label}` : k.label}
              </text>
            </g>
          ))}
        </svg>
      </div>
      {/* Above the axes: where hit-testing rounds a fractional edge, the plot's last row or column wins. */}
      <div ref={plot} style={{ position: 'relative', zIndex: 1, minWidth: 0, minHeight: 0 }}>
        {children}
      </div>
      <div data-testid={`${testId}-colorbar`} data-label={colorbar.label} data-scale={colorbar.log ? 'log' : 'linear'} style={{ position: 'relative', minHeight: 0 }}>
        <div aria-hidden style={{ position: 'absolute', left: 8, top: 0, bottom: 0, width: 10, background: `linear-gradient(to top, ${stops})`, border: '1px solid rgba(128,128,128,0.6)' }} />
        <svg aria-hidden width="100%" height="100%" style={{ position: 'absolute', inset: 0, overflow: 'visible', pointerEvents: 'none' }}>
          {bar.map((k) => (
            <g key={k.label} data-value={String(k.value)}>
              <line x1={19} x2={23} y1={`${(1 - k.t) * 100}%`} y2={`${(1 - k.t) * 100}%`} stroke="currentColor" strokeOpacity={0.6} />
              <text x={25} y={`${(1 - k.t) * 100}%`} dominantBaseline="middle" fill="currentColor">
                {k.label}
              </text>
            </g>
          ))}
        </svg>
        <div
          className="muted"
          title={`${colorbar.label} (${colorbar.log ? 'log' : 'linear'})`}
          style={{ position: 'absolute', right: 0, top: 0, bottom: 0, width: 14, writingMode: 'vertical-rl', textAlign: 'center', whiteSpace: 'nowrap', overflow: 'hidden' }}
        >
          {size.height >= 60 ? `${colorbar.label} (${colorbar.log ? 'log' : 'linear'})` : ''}
        </div>
      </div>
      <div />
      <div data-testid={`${testId}-x-axis`} data-label={x.label ?? 'token'} data-kind={xt.kind} style={{ position: 'relative', minWidth: 0, overflow: 'hidden' }}>
        <svg aria-hidden width="100%" height={BOTTOM_NO_LABEL} style={{ display: 'block', overflow: 'visible', pointerEvents: 'none' }}>
          {xt.ticks.map((k) => (
            <g key={k.index} data-tick={k.index}>
              <line x1={`${k.t * 100}%`} x2={`${k.t * 100}%`} y1={0} y2={4} stroke="currentColor" strokeOpacity={0.6} />
              <text x={`${k.t * 100}%`} y={13} textAnchor="middle" fill="currentColor">
                {k.label}
              </text>
            </g>
          ))}
        </svg>
        {x.label && (
          <div className="muted" style={{ textAlign: 'center', lineHeight: '14px', whiteSpace: 'nowrap' }}>
            {x.label}
          </div>
        )}
      </div>
      <div />
    </div>
  );
}

/** Fills the plot area: what a heatmap canvas inside HeatmapAxes uses as its style. */
export const PLOT_CANVAS_STYLE: CSSProperties = { position: 'absolute', inset: 0, width: '100%', height: '100%', display: 'block' };

/** An outline over one cell (the keyboard cursor, a selected row) in a plot showing `x` × `y`. */
export function CellOutline({ x, y, token, channel, colour = '#ffffff', testId }: { x: TokenView; y: TokenView; token: number | null; channel: number | null; colour?: string; testId?: string }) {
  const left = token === null ? 0 : ((token - x.start) / x.count) * 100;
  const width = token === null ? 100 : 100 / x.count;
  const top = channel === null ? 0 : ((channel - y.start) / y.count) * 100;
  const height = channel === null ? 100 : 100 / y.count;
  if (left + width < 0 || left > 100 || top + height < 0 || top > 100) return null;
  return (
    <div
      aria-hidden
      data-testid={testId}
      style={{ position: 'absolute', left: `${left}%`, top: `${top}%`, width: `max(3px, ${width}%)`, height: `max(3px, ${height}%)`, outline: `1px solid ${colour}`, pointerEvents: 'none' }}
    />
  );
}

