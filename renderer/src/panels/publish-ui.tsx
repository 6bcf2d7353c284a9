/**
 * The publication exports of a heatmap: a scale choice (×1, ×2, ×4) and "Export … SVG" / "Export
 * … PNG" buttons that render the figure from the data (publish.ts: title, axes, colour bar, the
 * shown view's cells; no hover stripe or cursor) and download it.
 */
import { useState } from 'react';
import { downloadBlob } from './csv';
import { cellsRgba, drawFigure, figureLayout, figureSvg, heatmapFigure, type FigureSpec } from './publish';

export const FIGURE_SCALES = [1, 2, 4] as const;

/** The cells of the figure as a canvas, one pixel per cell. */
function cellsCanvas(spec: FigureSpec, data: ArrayLike<number>): HTMLCanvasElement {
  const img = cellsRgba(data, spec.channels, spec.view, spec.range, spec.log, spec.colormap);
  const canvas = document.createElement('canvas');
  canvas.width = img.width;
  canvas.height = img.height;
  const g = canvas.getContext('2d');
  if (!g) throw new Error('Export: this browser gives no 2-D canvas');
  g.putImageData(new ImageData(new Uint8ClampedArray(img.rgba), img.width, img.height), 0, 0);
  return canvas;
}

/** Renders the figure of `spec` over `data` ([tokens, channels] row-major) and downloads it as `name`.svg or .png. */
export function exportFigure(kind: 'svg' | 'png', spec: FigureSpec, data: ArrayLike<number>, scale: number, name: string): void {
  const fig = heatmapFigure(spec);
  const cells = cellsCanvas(spec, data);
  if (kind === 'svg') {
    downloadBlob(new Blob([figureSvg(fig, cells.toDataURL('image/png'), scale)], { type: 'image/svg+xml' }), `${name}.svg`);
    return;
  }
  const layout = figureLayout(fig.width, fig.height);
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(layout.width * scale);
  canvas.height = Math.round(layout.height * scale);
  const g = canvas.getContext('2d');
  if (!g) throw new Error('Export: this browser gives no 2-D canvas');
  drawFigure(g, fig, cells, scale);
  canvas.toBlob((blob) => {
    if (blob) downloadBlob(blob, `${name}.png`);
  }, 'image/png');
}

/** The scale choice and the two buttons; `build` gives the figure of what is shown now (null: nothing to export). */
export function PublishControls({ label, name, build }: { label: string; name: string; build(): { spec: FigureSpec; data: ArrayLike<number> } | null }) {
  const [scale, setScale] = useState<number>(2);
  const run = (kind: 'svg' | 'png') => {
    const figure = build();
    if (figure) exportFigure(kind, figure.spec, figure.data, scale, name);
  };
  return (
    <>
      <label className="setting" title="Figure resolution: the figure is 900 × 520 px at ×1">
        <span>Figure</span>
        <select aria-label={`${label} figure scale`} value={scale} onChange={(e) => setScale(Number(e.target.value))}>
          {FIGURE_SCALES.map((s) => (
            <option key={s} value={s}>
              ×{s}
            </option>
          ))}
        </select>
      </label>
      <button type="button" onClick={() => run('svg')} title="Title, axes, colour bar; the cells shown now">
        Export {label} SVG
      </button>
      <button type="button" onClick={() => run('png')} title="Title, axes, colour bar; the cells shown now, at the chosen scale">
        Export {label} PNG
      </button>
    </>
  );
}
