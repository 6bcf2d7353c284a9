/**
 * The publication exports of a line or bar chart: a scale choice (×1, ×2, ×4) and "Export … SVG" /
 * "Export … PNG" buttons that render the figure from the data (publish-lines.ts: title, legend,
 * axes with ticks and units; no hover line or marker) and download it. The heatmaps' sibling is
 * publish-ui.tsx PublishControls.
 */
import { useState } from 'react';
import { downloadBlob } from './csv';
import { FIGURE_SCALES } from './publish-ui';
import { drawScene, lineFigureScene, sceneSvg, type LineFigureSpec } from './publish-lines';

/** Renders the figure of `spec` and downloads it as `name`.svg or .png at `scale`. */
export function exportLineFigure(kind: 'svg' | 'png', spec: LineFigureSpec, scale: number, name: string): void {
  const scene = lineFigureScene(spec);
  if (kind === 'svg') {
    downloadBlob(new Blob([sceneSvg(scene, scale)], { type: 'image/svg+xml' }), `${name}.svg`);
    return;
  }
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(scene.width * scale);
  canvas.height = Math.round(scene.height * scale);
  const g = canvas.getContext('2d');
  if (!g) throw new Error('Export: this browser gives no 2-D canvas');
  drawScene(g, scene, scale);
  canvas.toBlob((blob) => {
    if (blob) downloadBlob(blob, `${name}.png`);
  }, 'image/png');
}

/** The scale choice and the two buttons; `build` gives the figure of what is shown now (null: nothing to export). */
export function LinePublishControls({ label, name, build, disabled = false }: { label: string; name: string; build(): LineFigureSpec | null; disabled?: boolean }) {
  const [scale, setScale] = useState<number>(2);
  const run = (kind: 'svg' | 'png') => {
    const spec = build();
    if (spec) exportLineFigure(kind, spec, scale, name);
  };
  return (
    <>
      <label className="setting" title="Figure resolution: the figure is 900 px wide at ×1">
        <span>Figure</span>
        <select aria-label={`${label} figure scale`} value={scale} disabled={disabled} onChange={(e) => setScale(Number(e.target.value))}>
          {FIGURE_SCALES.map((s) => (
            <option key={s} value={s}>
              ×{s}
            </option>
          ))}
        </select>
      </label>
      <button type="button" disabled={disabled} onClick={() => run('svg')} title="Title, legend, axes with units; drawn from the data">
        Export {label} SVG
      </button>
      <button type="button" disabled={disabled} onClick={() => run('png')} title="Title, legend, axes with units; drawn from the data, at the chosen scale">
        Export {label} PNG
      </button>
    </>
  );
}
