/**
 * Line and bar charts as figures for publication, rendered from the data (not a screen grab): a
 * title, a legend naming each series' colour, one or more stacked plots sharing the x axis (each
 * with its own value axis: nice ticks and labels, chart-scale.ts), and the x axis (token indices or
 * category names) under the last plot. Never the hover line or the selection marker.
 *
 * The figure is first laid out as a list of primitives (`lineFigureScene`: text, lines, polylines,
 * rectangles, in figure pixels at scale 1); the SVG (`sceneSvg`) and the PNG drawn on a 2-D canvas
 * (`drawScene`) both render that list, at ×1, ×2 or ×4. Black on white, as journals print.
 *
 * Layout (scale 1): the plots span x from 72 to width − 24; the title's baseline is at y 20, the
 * legend's rows (16 px each) start at y 30, the first plot starts 10 px under them (plus 16 px for
 * a heading when a plot has one); plots are GAP apart and share height − top − 44 by weight.
 * Index x axes place point i at the centre of cell i of `count` equal cells: x = left + (i + ½)/count · w;
 * value axes have a tick about every 40 px.
 */
import { FIGURE_FONT, escapeXml, type Figure2d } from './publish';
import { formatTick, labelWidth, niceTicks, thinLabels, visibleText, type Range } from './chart-scale';

export interface FigureSeries {
  name: string;
  /** One value per x index (or category); NaN / ±∞: no point (a line breaks, no bar). */
  values: ArrayLike<number>;
  colour: string;
}

export interface FigurePlot {
  kind: 'lines' | 'bars';
  series: readonly FigureSeries[];
  /** The value axis's name and unit. */
  yLabel: string;
  /** A small heading over the plot (e.g. "layer 0"). */
  heading?: string;
  /** Fixed value range (default: the finite values' range; bars always include 0). */
  yRange?: Range;
  /** Dashed horizontal guide lines at these values. */
  guides?: readonly number[];
  /** Share of the plots' height (default 1). */
  weight?: number;
}

export interface LineFigureSpec {
  title: string;
  /** Figure size at scale 1 (CSS pixels, SVG user units). */
  width: number;
  height: number;
  /** The x axis's name and unit. */
  xLabel: string;
  /** Index axis over `count` positions, or one category per name (bars grouped per category). */
  /** 'index': point i at x = offset + i · step (default 0 and 1: token indices). */
  x: { kind: 'index'; count: number; offset?: number; step?: number } | { kind: 'category'; names: readonly string[] };
  plots: readonly FigurePlot[];
}

export type Prim =
  | { kind: 'text'; role: string; x: number; y: number; text: string; size: number; anchor: 'start' | 'middle' | 'end'; bold?: boolean; rotate?: boolean }
  | { kind: 'line'; role: string; x1: number; y1: number; x2: number; y2: number; colour: string; width: number; dash?: boolean }
  | { kind: 'polyline'; role: string; series: string; points: readonly (readonly [number, number])[]; colour: string; width: number }
  | { kind: 'rect'; role: string; series?: string; x: number; y: number; w: number; h: number; fill: string | null; stroke: string | null };

export interface Scene {
  width: number;
  height: number;
  title: string;
  prims: Prim[];
}

export const LINE_MARGIN = { left: 72, right: 24, bottom: 44 };
const TITLE_Y = 20;
const LEGEND_TOP = 30;
const LEGEND_ROW = 16;
const HEADING = 16;
const GAP = 14;
const SWATCH = 18;

/**
 * The finite values' range of a plot (bars: with 0), widened by 5 % at each end other than a bar's
 * 0 (so that no line runs along the frame), or around a single value.
 */
export function plotRange(plot: FigurePlot): Range {
  if (plot.yRange) return plot.yRange;
  let min = Infinity;
  let max = -Infinity;
  for (const s of plot.series)
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i] as number;
      if (Number.isFinite(v)) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
  if (plot.kind === 'bars') {
    min = Math.min(min, 0);
    max = Math.max(max, 0);
  }
  if (!(min <= max)) return { min: 0, max: 1 };
  if (min === max) return min === 0 ? { min: 0, max: 1 } : { min: min - Math.abs(min) / 2, max: max + Math.abs(max) / 2 };
  const pad = (max - min) * 0.05;
  return { min: plot.kind === 'bars' && min === 0 ? 0 : min - pad, max: plot.kind === 'bars' && max === 0 ? 0 : max + pad };
}

/** The legend: each series once (by name), wrapped into rows that fit the plots' width. */
function legendEntries(spec: LineFigureSpec, left: number, width: number): { name: string; colour: string; kind: 'lines' | 'bars'; x: number; row: number }[] {
  const seen = new Set<string>();
  const out: { name: string; colour: string; kind: 'lines' | 'bars'; x: number; row: number }[] = [];
  let x = left;
  let row = 0;
  for (const plot of spec.plots)
    for (const s of plot.series) {
      if (seen.has(s.name)) continue;
      seen.add(s.name);
      const w = SWATCH + 4 + labelWidth(s.name) + 16;
      if (x > left && x + w > left + width) {
        row++;
        x = left;
      }
      out.push({ name: s.name, colour: s.colour, kind: plot.kind, x, row });
      x += w;
    }
  return out;
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/** The figure laid out as primitives (figure pixels at scale 1). */
export function lineFigureScene(spec: LineFigureSpec): Scene {
  const prims: Prim[] = [];
  const width = Math.max(200, spec.width);
  const left = LINE_MARGIN.left;
  const plotW = width - LINE_MARGIN.left - LINE_MARGIN.right;
  prims.push({ kind: 'text', role: 'title', x: left, y: TITLE_Y, text: spec.title, size: 14, anchor: 'start', bold: true });
  const legend = legendEntries(spec, left, plotW);
  const rows = legend.length ? Math.max(...legend.map((e) => e.row)) + 1 : 0;
  for (const e of legend) {
    const cy = LEGEND_TOP + e.row * LEGEND_ROW + 6;
    if (e.kind === 'lines') prims.push({ kind: 'line', role: 'legend', x1: e.x, y1: cy, x2: e.x + SWATCH, y2: cy, colour: e.colour, width: 2 });
    else prims.push({ kind: 'rect', role: 'legend', series: e.name, x: e.x + 4, y: cy - 5, w: 10, h: 10, fill: e.colour, stroke: null });
    prims.push({ kind: 'text', role: 'legend', x: e.x + SWATCH + 4, y: cy + 3.5, text: e.name, size: 10, anchor: 'start' });
  }
  const top = LEGEND_TOP + rows * LEGEND_ROW + 10;
  const height = Math.max(top + LINE_MARGIN.bottom + 40 * spec.plots.length, spec.height);
  const headings: number[] = spec.plots.map((p) => (p.heading ? HEADING : 0));
  const free = height - top - LINE_MARGIN.bottom - GAP * Math.max(0, spec.plots.length - 1) - headings.reduce((a, b) => a + b, 0);
  const weights = spec.plots.map((p) => (p.weight !== undefined && p.weight > 0 ? p.weight : 1));
  const totalWeight = weights.reduce((a, b) => a + b, 0) || 1;

  const count = spec.x.kind === 'index' ? spec.x.count : spec.x.names.length;
  const cell = count > 0 ? plotW / count : plotW;
  const xAt = (i: number) => left + (i + 0.5) * cell;

  let y0 = top;
  spec.plots.forEach((plot, k) => {
    if (plot.heading) prims.push({ kind: 'text', role: 'heading', x: left, y: y0 + 11, text: plot.heading, size: 11, anchor: 'start', bold: true });
    const py = y0 + (headings[k] as number);
    const ph = (free * (weights[k] as number)) / totalWeight;
    const range = plotRange(plot);
    const span = range.max - range.min || 1;
    const yAt = (v: number) => py + ph - ((Math.min(range.max, Math.max(range.min, v)) - range.min) / span) * ph;
    // Value axis.
    const values = niceTicks(range.min, range.max, Math.max(2, Math.floor(ph / 40)));
    const step = values.length > 1 ? (values[1] as number) - (values[0] as number) : undefined;
    for (const v of values) {
      const y = yAt(v);
      prims.push({ kind: 'line', role: 'y-axis', x1: left - 4, y1: y, x2: left, y2: y, colour: '#000000', width: 0.75 });
      prims.push({ kind: 'text', role: 'y-axis', x: left - 6, y: y + 3.5, text: formatTick(v, step), size: 10, anchor: 'end' });
    }
    prims.push({ kind: 'text', role: 'y-label', x: 16, y: py + ph / 2, text: plot.yLabel, size: 11, anchor: 'middle', rotate: true });
    for (const g of plot.guides ?? []) if (g >= range.min && g <= range.max) prims.push({ kind: 'line', role: 'guide', x1: left, y1: yAt(g), x2: left + plotW, y2: yAt(g), colour: '#777777', width: 0.75, dash: true });
    if (plot.kind === 'bars') {
      if (range.min < 0 && range.max > 0) prims.push({ kind: 'line', role: 'zero', x1: left, y1: yAt(0), x2: left + plotW, y2: yAt(0), colour: '#000000', width: 0.5 });
      const n = plot.series.length || 1;
      const barW = (cell * 0.8) / n;
      plot.series.forEach((s, j) => {
        for (let i = 0; i < Math.min(count, s.values.length); i++) {
          const v = s.values[i] as number;
          if (!Number.isFinite(v)) continue;
          const ya = yAt(v);
          const yz = yAt(0);
          prims.push({ kind: 'rect', role: 'bar', series: s.name, x: left + i * cell + cell * 0.1 + j * barW, y: Math.min(ya, yz), w: barW, h: Math.abs(yz - ya), fill: s.colour, stroke: null });
        }
      });
    } else {
      for (const s of plot.series) {
        let run: [number, number][] = [];
        const flush = () => {
          // A lone point gets a short stub, so that its round cap still shows.
          if (run.length === 1) run.push([(run[0] as [number, number])[0] + 0.01, (run[0] as [number, number])[1]]);
          if (run.length) prims.push({ kind: 'polyline', role: 'series', series: s.name, points: run, colour: s.colour, width: 1.5 });
          run = [];
        };
        for (let i = 0; i < Math.min(count, s.values.length); i++) {
          const v = s.values[i] as number;
          if (Number.isFinite(v)) run.push([xAt(i), yAt(v)]);
          else flush();
        }
        flush();
      }
    }
    prims.push({ kind: 'rect', role: 'frame', x: left, y: py, w: plotW, h: ph, fill: null, stroke: '#000000' });
    y0 = py + ph + GAP;
  });

  // The x axis under the last plot.
  const axisY = y0 - GAP;
  if (spec.x.kind === 'index') {
    const { offset = 0, step = 1 } = spec.x;
    for (const v of count > 0 ? niceTicks(offset, offset + (count - 1) * step, Math.max(2, Math.floor(plotW / 70)), true) : []) {
      const i = (v - offset) / step;
      prims.push({ kind: 'line', role: 'x-axis', x1: xAt(i), y1: axisY, x2: xAt(i), y2: axisY + 4, colour: '#000000', width: 0.75 });
      prims.push({ kind: 'text', role: 'x-axis', x: xAt(i), y: axisY + 14, text: String(v), size: 10, anchor: 'middle' });
    }
  } else {
    const names = spec.x.names.map((n) => visibleText(n, 14));
    for (const i of thinLabels(names.map((n, i) => ({ centre: xAt(i), size: labelWidth(n) })))) {
      prims.push({ kind: 'line', role: 'x-axis', x1: xAt(i), y1: axisY, x2: xAt(i), y2: axisY + 4, colour: '#000000', width: 0.75 });
      prims.push({ kind: 'text', role: 'x-axis', x: xAt(i), y: axisY + 14, text: names[i] as string, size: 10, anchor: 'middle' });
    }
  }
  prims.push({ kind: 'text', role: 'x-label', x: left + plotW / 2, y: axisY + 34, text: spec.xLabel, size: 12, anchor: 'middle' });
  return { width, height: axisY + LINE_MARGIN.bottom, title: spec.title, prims };
}

const f = (v: number) => String(r2(v));

/** The scene as an SVG document, `scale` × its size. */
export function sceneSvg(scene: Scene, scale = 1): string {
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f(scene.width * scale)}" height="${f(scene.height * scale)}" viewBox="0 0 ${f(scene.width)} ${f(scene.height)}" font-family="${FIGURE_FONT}" font-size="10">`,
  );
  out.push(`<title>${escapeXml(scene.title)}</title>`);
  out.push(`<rect width="${f(scene.width)}" height="${f(scene.height)}" fill="#ffffff"/>`);
  for (const p of scene.prims) {
    const role = `data-role="${p.role}"`;
    if (p.kind === 'text') {
      const rot = p.rotate ? ` transform="rotate(-90 ${f(p.x)} ${f(p.y)})"` : '';
      out.push(`<text ${role} x="${f(p.x)}" y="${f(p.y)}"${rot} text-anchor="${p.anchor}" font-size="${p.size}"${p.bold ? ' font-weight="bold"' : ''} fill="#000000">${escapeXml(p.text)}</text>`);
    } else if (p.kind === 'line') {
      out.push(`<line ${role} x1="${f(p.x1)}" y1="${f(p.y1)}" x2="${f(p.x2)}" y2="${f(p.y2)}" stroke="${p.colour}" stroke-width="${p.width}"${p.dash ? ' stroke-dasharray="4 3"' : ''}/>`);
    } else if (p.kind === 'polyline') {
      out.push(`<polyline ${role} data-series="${escapeXml(p.series)}" points="${p.points.map(([x, y]) => `${f(x)},${f(y)}`).join(' ')}" fill="none" stroke="${p.colour}" stroke-width="${p.width}" stroke-linejoin="round" stroke-linecap="round"/>`);
    } else {
      const series = p.series !== undefined ? ` data-series="${escapeXml(p.series)}"` : '';
      out.push(`<rect ${role}${series} x="${f(p.x)}" y="${f(p.y)}" width="${f(p.w)}" height="${f(p.h)}" fill="${p.fill ?? 'none'}"${p.stroke ? ` stroke="${p.stroke}" stroke-width="0.75"` : ''}/>`);
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Draws the scene (as sceneSvg does) at `scale` on a context whose canvas is scale × its size. */
export function drawScene(g: Figure2d & Pick<CanvasRenderingContext2D, 'setLineDash'>, scene: Scene, scale = 1): void {
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, scene.width, scene.height);
  for (const p of scene.prims) {
    if (p.kind === 'text') {
      g.fillStyle = '#000000';
      g.font = `${p.bold ? 'bold ' : ''}${p.size}px ${FIGURE_FONT}`;
      g.textAlign = p.anchor === 'start' ? 'left' : p.anchor === 'end' ? 'right' : 'center';
      g.textBaseline = 'alphabetic';
      if (p.rotate) {
        g.save();
        g.translate(p.x, p.y);
        g.rotate(-Math.PI / 2);
        g.fillText(p.text, 0, 0);
        g.restore();
      } else g.fillText(p.text, p.x, p.y);
    } else if (p.kind === 'line' || p.kind === 'polyline') {
      g.strokeStyle = p.colour;
      g.lineWidth = p.width;
      g.setLineDash(p.kind === 'line' && p.dash ? [4, 3] : []);
      g.beginPath();
      const pts = p.kind === 'line' ? [[p.x1, p.y1] as const, [p.x2, p.y2] as const] : p.points;
      pts.forEach(([x, y], i) => (i === 0 ? g.moveTo(x, y) : g.lineTo(x, y)));
      if (pts.length === 1) g.lineTo((pts[0] as readonly [number, number])[0] + 0.01, (pts[0] as readonly [number, number])[1]);
      g.stroke();
      g.setLineDash([]);
    } else {
      if (p.fill) {
        g.fillStyle = p.fill;
        g.fillRect(p.x, p.y, p.w, p.h);
      }
      if (p.stroke) {
        g.strokeStyle = p.stroke;
        g.lineWidth = 0.75;
        g.strokeRect(p.x, p.y, p.w, p.h);
      }
    }
  }
}

/** Colours that print on white: A (blue) and B (orange) as on screen, darker; B − A in grey. */
export const FIGURE_COLOURS = { a: '#0277bd', b: '#e64a19', diff: '#616161', before: '#0277bd', after: '#e64a19' } as const;
/** A figure's width at scale 1. */
export const FIGURE_WIDTH = 900;

/**
 * A screen colour made to print on white: #rrggbb colours lighter than a relative luminance of
 * 0.35 (the dark theme's pastels) are darkened in proportion until they reach it; others as given.
 */
export function printColour(css: string): string {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(css);
  if (!m) return css;
  const rgb = [m[1], m[2], m[3]].map((h) => parseInt(h as string, 16) / 255);
  const lin = (c: number) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const lum = (c: number[]) => 0.2126 * lin(c[0] as number) + 0.7152 * lin(c[1] as number) + 0.0722 * lin(c[2] as number);
  if (lum(rgb) <= 0.35) return css.toLowerCase();
  let lo = 0;
  let hi = 1;
  for (let k = 0; k < 30; k++) {
    const mid = (lo + hi) / 2;
    if (lum(rgb.map((c) => c * mid)) > 0.35) hi = mid;
    else lo = mid;
  }
  return `#${rgb.map((c) => Math.round(c * lo * 255).toString(16).padStart(2, '0')).join('')}`;
}

/** The figure of a line chart (LineChart's data): one plot of its series (in print colours) over token indices. */
export function lineChartFigure(o: { title: string; series: readonly FigureSeries[]; xLabel: string; yLabel: string; yRange?: Range; guides?: readonly number[]; height?: number; xOffset?: number; xStep?: number }): LineFigureSpec {
  const count = Math.max(0, ...o.series.map((s) => s.values.length));
  const spacing = o.xOffset !== undefined || o.xStep !== undefined ? { offset: o.xOffset ?? 0, step: o.xStep ?? 1 } : {};
  return {
    title: o.title,
    width: FIGURE_WIDTH,
    height: o.height ?? 420,
    xLabel: o.xLabel,
    x: { kind: 'index', count, ...spacing },
    plots: [{ kind: 'lines', series: o.series.map((s) => ({ ...s, colour: printColour(s.colour) })), yLabel: o.yLabel, ...(o.yRange ? { yRange: o.yRange } : {}), ...(o.guides ? { guides: o.guides } : {}) }],
  };
}

/** The compare figure: per layer, ‖Δ_t‖ of A and B (lines) over B − A (bars), on the aligned positions. */
export function compareFigure(cmp: { layers: readonly number[]; tokens: number; a: readonly ArrayLike<number>[]; b: readonly ArrayLike<number>[]; diff: readonly ArrayLike<number>[] }, names: { a: string; b: string }): LineFigureSpec {
  const plots: FigurePlot[] = [];
  cmp.layers.forEach((layer, k) => {
    plots.push({
      kind: 'lines',
      heading: `layer ${layer}`,
      yLabel: '‖Δ_t‖ (L2)',
      weight: 2,
      series: [
        { name: `A: ${names.a}`, values: cmp.a[k] ?? [], colour: FIGURE_COLOURS.a },
        { name: `B: ${names.b}`, values: cmp.b[k] ?? [], colour: FIGURE_COLOURS.b },
      ],
    });
    plots.push({ kind: 'bars', yLabel: 'B − A', weight: 1, series: [{ name: 'B − A (‖Δ_t‖ of B minus A)', values: cmp.diff[k] ?? [], colour: FIGURE_COLOURS.diff }] });
  });
  return {
    title: 'Selection score ‖Δ_t‖ per layer: prompt A and prompt B',
    width: FIGURE_WIDTH,
    height: 110 + 190 * cmp.layers.length,
    xLabel: 'position (aligned token index)',
    x: { kind: 'index', count: cmp.tokens },
    plots,
  };
}

/** The knockout figure: per next token, its probability in the baseline and with token `token` filtered (grouped bars). */
export function knockoutFigure(rows: readonly { text: string; before: number; after: number }[], token: number, layers: readonly number[]): LineFigureSpec {
  return {
    title: `Next-token probability with and without token ${token} (Δ := 0 in layer${layers.length === 1 ? '' : 's'} ${layers.join(', ')})`,
    width: FIGURE_WIDTH,
    height: 420,
    xLabel: 'next token (the top k of either run)',
    x: { kind: 'category', names: rows.map((r) => r.text) },
    plots: [
      {
        kind: 'bars',
        yLabel: 'probability',
        series: [
          { name: 'baseline', values: rows.map((r) => r.before), colour: FIGURE_COLOURS.before },
          { name: `token ${token} filtered`, values: rows.map((r) => r.after), colour: FIGURE_COLOURS.after },
        ],
      },
    ],
  };
}
