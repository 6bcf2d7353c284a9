/**
 * Heatmap figures for publication, rendered from the data (not a screen grab): a title, the cells
 * of the shown view (one image pixel per cell, scaled without smoothing), a token axis and a
 * channel / state / row axis with ticks and labels, and a colour bar with its values; never the
 * hover stripe or the keyboard cursor. One layout (`figureLayout`) serves both outputs: an SVG
 * string (`figureSvg`, the cells embedded as a PNG image) and a PNG drawn on a 2-D canvas
 * (`drawFigure`) at ×1, ×2 or ×4. Black on white, as journals print.
 */
import { colormapCss, colormapTable, type ColormapName } from './colormaps';
import { clampView, normalize, type TokenView } from './selection';
import { indexTicks, tokenAxisTicks, scaleTicks, type Range, type View2d } from './chart-scale';

export interface FigureTick {
  /** 0..1 along the axis: left → right for x, top → bottom for y, bottom → top for the colour bar. */
  t: number;
  label: string;
}

export interface HeatmapFigure {
  title: string;
  /** Width and height at scale 1, in CSS pixels (SVG user units). */
  width: number;
  height: number;
  xLabel: string;
  xTicks: readonly FigureTick[];
  yLabel: string;
  yTicks: readonly FigureTick[];
  colorbar: { label: string; colormap: ColormapName; ticks: readonly FigureTick[] };
  /** Size of the cell image (columns = tokens shown, rows = channels shown). */
  columns: number;
  rows: number;
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface FigureLayout {
  width: number;
  height: number;
  title: { x: number; y: number };
  plot: Box;
  bar: Box;
}

const MARGIN = { top: 34, left: 72, bottom: 44, right: 96 };
const BAR_GAP = 14;
const BAR_WIDTH = 14;
export const FIGURE_FONT = 'Helvetica, Arial, sans-serif';

/** Where the title, the plot and the colour bar go in a figure width × height. */
export function figureLayout(width: number, height: number): FigureLayout {
  const w = Math.max(40, width - MARGIN.left - MARGIN.right);
  const h = Math.max(40, height - MARGIN.top - MARGIN.bottom);
  const plot = { x: MARGIN.left, y: MARGIN.top, w, h };
  return {
    width: plot.x + w + MARGIN.right,
    height: plot.y + h + MARGIN.bottom,
    title: { x: MARGIN.left, y: 20 },
    plot,
    bar: { x: plot.x + w + BAR_GAP, y: plot.y, w: BAR_WIDTH, h },
  };
}

/** The view widened to whole cells (an export shows whole cells only). */
export function wholeCells(view: TokenView, total: number): TokenView {
  const start = Math.max(0, Math.floor(view.start + 1e-9));
  const end = Math.min(total, Math.ceil(view.start + view.count - 1e-9));
  return clampView({ start, count: Math.max(1, end - start) }, total, 1);
}

/**
 * The RGBA8 image of the cells in `view` of a [tokens, channels] row-major matrix (value of token
 * t, channel c at data[t·channels + c]): one pixel per cell, tokens along x, channels along y,
 * coloured as the WebGL heatmap colours them (selection.ts normalize, the nearest of the
 * colormap's 256 entries). Non-finite values are mid grey.
 */
export function cellsRgba(data: ArrayLike<number>, channels: number, view: View2d, range: Range, log: boolean, colormap: ColormapName): { width: number; height: number; rgba: Uint8ClampedArray } {
  const x0 = Math.floor(view.x.start);
  const y0 = Math.floor(view.y.start);
  const width = Math.max(1, Math.round(view.x.count));
  const height = Math.max(1, Math.round(view.y.count));
  const table = colormapTable(colormap);
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = data[(x0 + x) * channels + (y0 + y)] as number;
      const o = (y * width + x) * 4;
      if (!Number.isFinite(v)) {
        rgba.set([128, 128, 128, 255], o);
        continue;
      }
      const i = Math.round(normalize(v, range, log) * 255) * 4;
      rgba.set([table[i] as number, table[i + 1] as number, table[i + 2] as number, 255], o);
    }
  }
  return { width, height, rgba };
}

export interface FigureSpec {
  title: string;
  /** Figure size at scale 1 (CSS pixels). */
  width: number;
  height: number;
  /** The whole-cell view exported. */
  view: View2d;
  tokens: number;
  channels: number;
  /** Token texts for the x axis (shown when the zoom gives each token room), or null for indices. */
  texts: readonly string[] | null;
  /** Token i is token tokenOffset + i of the trace (a window of a long trace): absolute index labels. */
  tokenOffset?: number;
  xLabel: string;
  yLabel: string;
  /** Row names (e.g. "layer 0") instead of indices on the y axis. */
  yNames?: readonly string[];
  range: Range;
  log: boolean;
  colormap: ColormapName;
  colorbarLabel: string;
}

/** A figure's ticks and labels, computed for its own plot size. */
export function heatmapFigure(spec: FigureSpec): HeatmapFigure {
  const layout = figureLayout(spec.width, spec.height);
  const x = tokenAxisTicks(spec.view.x, layout.plot.w, spec.texts, spec.tokens, spec.tokenOffset).ticks;
  const y = spec.yNames
    ? spec.yNames.flatMap((name, i) => (i >= spec.view.y.start && i < spec.view.y.start + spec.view.y.count ? [{ t: (i + 0.5 - spec.view.y.start) / spec.view.y.count, label: name }] : []))
    : indexTicks(spec.view.y, layout.plot.h, spec.channels, 36).map((k) => ({ t: k.t, label: k.label }));
  return {
    title: spec.title,
    width: layout.width,
    height: layout.height,
    xLabel: spec.xLabel,
    xTicks: x.map((k) => ({ t: k.t, label: k.label })),
    yLabel: spec.yLabel,
    yTicks: y,
    colorbar: { label: spec.colorbarLabel, colormap: spec.colormap, ticks: scaleTicks(spec.range, spec.log, 6).map((k) => ({ t: k.t, label: k.label })) },
    columns: Math.max(1, Math.round(spec.view.x.count)),
    rows: Math.max(1, Math.round(spec.view.y.count)),
  };
}

/** Text for XML: the five special characters escaped, characters XML 1.0 forbids replaced. */
export function escapeXml(text: string): string {
  const allowed = (code: number) => (code >= 0x20 || code === 0x9 || code === 0xa || code === 0xd) && code !== 0xfffe && code !== 0xffff;
  return [...text]
    .map((c) => (allowed(c.codePointAt(0) ?? 0) ? c : '\ufffd'))
    .join('')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

const f = (v: number) => String(Number(v.toFixed(2)));
const BAR_STOPS = 16;

/** The figure as an SVG document (`imageHref`: the cells as a PNG data URL), `scale` × its size. */
export function figureSvg(fig: HeatmapFigure, imageHref: string, scale = 1): string {
  const L = figureLayout(fig.width, fig.height);
  const { plot, bar } = L;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${f(L.width * scale)}" height="${f(L.height * scale)}" viewBox="0 0 ${f(L.width)} ${f(L.height)}" font-family="${FIGURE_FONT}" font-size="10">`,
  );
  out.push(`<title>${escapeXml(fig.title)}</title>`);
  out.push('<defs><linearGradient id="colorbar-gradient" x1="0" y1="1" x2="0" y2="0">');
  for (let k = 0; k <= BAR_STOPS; k++) out.push(`<stop offset="${f(k / BAR_STOPS)}" stop-color="${colormapCss(fig.colorbar.colormap, k / BAR_STOPS)}"/>`);
  out.push('</linearGradient></defs>');
  out.push(`<rect width="${f(L.width)}" height="${f(L.height)}" fill="#ffffff"/>`);
  out.push(`<text data-role="title" x="${f(L.title.x)}" y="${f(L.title.y)}" font-size="14" font-weight="bold" fill="#000000">${escapeXml(fig.title)}</text>`);
  out.push(`<g data-role="plot"><image x="${f(plot.x)}" y="${f(plot.y)}" width="${f(plot.w)}" height="${f(plot.h)}" preserveAspectRatio="none" image-rendering="pixelated" style="image-rendering:pixelated" href="${escapeXml(imageHref)}" xlink:href="${escapeXml(imageHref)}"/>`);
  out.push(`<rect x="${f(plot.x)}" y="${f(plot.y)}" width="${f(plot.w)}" height="${f(plot.h)}" fill="none" stroke="#000000" stroke-width="0.75"/></g>`);
  out.push('<g data-role="x-axis" fill="#000000" stroke="#000000">');
  for (const t of fig.xTicks) {
    const x = plot.x + t.t * plot.w;
    out.push(`<line x1="${f(x)}" x2="${f(x)}" y1="${f(plot.y + plot.h)}" y2="${f(plot.y + plot.h + 4)}" stroke-width="0.75"/><text x="${f(x)}" y="${f(plot.y + plot.h + 14)}" text-anchor="middle" stroke="none">${escapeXml(t.label)}</text>`);
  }
  out.push(`<text data-role="x-label" x="${f(plot.x + plot.w / 2)}" y="${f(plot.y + plot.h + 34)}" text-anchor="middle" font-size="12" stroke="none">${escapeXml(fig.xLabel)}</text></g>`);
  out.push('<g data-role="y-axis" fill="#000000" stroke="#000000">');
  for (const t of fig.yTicks) {
    const y = plot.y + t.t * plot.h;
    out.push(`<line x1="${f(plot.x - 4)}" x2="${f(plot.x)}" y1="${f(y)}" y2="${f(y)}" stroke-width="0.75"/><text x="${f(plot.x - 6)}" y="${f(y + 3.5)}" text-anchor="end" stroke="none">${escapeXml(t.label)}</text>`);
  }
  const yl = { x: 16, y: plot.y + plot.h / 2 };
  out.push(`<text data-role="y-label" x="${f(yl.x)}" y="${f(yl.y)}" transform="rotate(-90 ${f(yl.x)} ${f(yl.y)})" text-anchor="middle" font-size="12" stroke="none">${escapeXml(fig.yLabel)}</text></g>`);
  out.push(`<g data-role="colorbar" fill="#000000" stroke="#000000"><rect x="${f(bar.x)}" y="${f(bar.y)}" width="${f(bar.w)}" height="${f(bar.h)}" fill="url(#colorbar-gradient)" stroke="#000000" stroke-width="0.75"/>`);
  for (const t of fig.colorbar.ticks) {
    const y = bar.y + (1 - t.t) * bar.h;
    out.push(`<line x1="${f(bar.x + bar.w)}" x2="${f(bar.x + bar.w + 4)}" y1="${f(y)}" y2="${f(y)}" stroke-width="0.75"/><text x="${f(bar.x + bar.w + 6)}" y="${f(y + 3.5)}" stroke="none">${escapeXml(t.label)}</text>`);
  }
  const cl = { x: bar.x + bar.w + 66, y: bar.y + bar.h / 2 };
  out.push(`<text data-role="colorbar-label" x="${f(cl.x)}" y="${f(cl.y)}" transform="rotate(-90 ${f(cl.x)} ${f(cl.y)})" text-anchor="middle" font-size="12" stroke="none">${escapeXml(fig.colorbar.label)}</text></g>`);
  out.push('</svg>');
  return out.join('\n');
}

/** The 2-D context calls drawFigure makes (a canvas's or an OffscreenCanvas's context). */
export type Figure2d = Pick<
  CanvasRenderingContext2D,
  | 'setTransform'
  | 'fillStyle'
  | 'strokeStyle'
  | 'lineWidth'
  | 'font'
  | 'textAlign'
  | 'textBaseline'
  | 'fillRect'
  | 'strokeRect'
  | 'fillText'
  | 'beginPath'
  | 'moveTo'
  | 'lineTo'
  | 'stroke'
  | 'save'
  | 'restore'
  | 'translate'
  | 'rotate'
  | 'drawImage'
  | 'imageSmoothingEnabled'
  | 'createLinearGradient'
>;

/** Draws the figure (same layout as figureSvg) at `scale` on a context whose canvas is scale × its size. */
export function drawFigure(g: Figure2d, fig: HeatmapFigure, cells: CanvasImageSource, scale = 1): void {
  const L = figureLayout(fig.width, fig.height);
  const { plot, bar } = L;
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.fillStyle = '#ffffff';
  g.fillRect(0, 0, L.width, L.height);
  g.imageSmoothingEnabled = false;
  g.drawImage(cells, plot.x, plot.y, plot.w, plot.h);
  g.strokeStyle = '#000000';
  g.lineWidth = 0.75;
  g.strokeRect(plot.x, plot.y, plot.w, plot.h);
  g.fillStyle = '#000000';
  g.font = `bold 14px ${FIGURE_FONT}`;
  g.textAlign = 'left';
  g.textBaseline = 'alphabetic';
  g.fillText(fig.title, L.title.x, L.title.y);
  const tick = (x1: number, y1: number, x2: number, y2: number) => {
    g.beginPath();
    g.moveTo(x1, y1);
    g.lineTo(x2, y2);
    g.stroke();
  };
  g.font = `10px ${FIGURE_FONT}`;
  g.textAlign = 'center';
  for (const t of fig.xTicks) {
    const x = plot.x + t.t * plot.w;
    tick(x, plot.y + plot.h, x, plot.y + plot.h + 4);
    g.fillText(t.label, x, plot.y + plot.h + 14);
  }
  g.textAlign = 'right';
  for (const t of fig.yTicks) {
    const y = plot.y + t.t * plot.h;
    tick(plot.x - 4, y, plot.x, y);
    g.fillText(t.label, plot.x - 6, y + 3.5);
  }
  const gradient = g.createLinearGradient(0, bar.y + bar.h, 0, bar.y);
  for (let k = 0; k <= BAR_STOPS; k++) gradient.addColorStop(k / BAR_STOPS, colormapCss(fig.colorbar.colormap, k / BAR_STOPS));
  g.fillStyle = gradient;
  g.fillRect(bar.x, bar.y, bar.w, bar.h);
  g.strokeRect(bar.x, bar.y, bar.w, bar.h);
  g.fillStyle = '#000000';
  g.textAlign = 'left';
  for (const t of fig.colorbar.ticks) {
    const y = bar.y + (1 - t.t) * bar.h;
    tick(bar.x + bar.w, y, bar.x + bar.w + 4, y);
    g.fillText(t.label, bar.x + bar.w + 6, y + 3.5);
  }
  g.font = `12px ${FIGURE_FONT}`;
  g.textAlign = 'center';
  g.fillText(fig.xLabel, plot.x + plot.w / 2, plot.y + plot.h + 34);
  for (const [text, x, y] of [
    [fig.yLabel, 16, plot.y + plot.h / 2],
    [fig.colorbar.label, bar.x + bar.w + 66, bar.y + bar.h / 2],
  ] as const) {
    g.save();
    g.translate(x, y);
    g.rotate(-Math.PI / 2);
    g.fillText(text, 0, 0);
    g.restore();
  }
}
