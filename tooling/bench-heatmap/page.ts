/**
 * The browser side of `npm run bench:heatmap` (tooling/bench-heatmap.ts): draws a synthetic
 * tokens × channels Δ matrix with the app's own WebGL2 heatmap renderer (renderer/src/panels/
 * heatmap-gl.ts) and drives pan and zoom through the app's view functions (selection.ts zoomView /
 * panView), one new view per requestAnimationFrame. Each frame's draw is followed by a 1-pixel
 * readPixels, so the GPU work of the frame is done before the next one is timed.
 */
import { HeatmapRenderer } from '../../renderer/src/panels/heatmap-gl';
import { fullView, panView, valueRange, zoomView, type TokenView } from '../../renderer/src/panels/selection';

export interface HeatmapBenchOptions {
  tokens: number;
  channels: number;
  frames: number;
  /** The canvas's CSS size. */
  width: number;
  height: number;
}

export interface HeatmapBenchPageResult {
  tokens: number;
  channels: number;
  frames: number;
  canvas: { width: number; height: number; devicePixelRatio: number };
  renderer: string;
  vendor: string;
  /** Building the synthetic matrix, and uploading it as a texture (first draw included), ms. */
  fillMs: number;
  uploadMs: number;
  /** Time between successive requestAnimationFrame callbacks, ms (frames − 1 values). */
  frameIntervalsMs: number[];
  /** draw() plus the 1-pixel readback that waits for the GPU, ms per frame. */
  drawMs: number[];
  /** The views drawn (first and last), for the record. */
  firstView: TokenView;
  lastView: TokenView;
  /** Distinct colours in the last frame (read back): proof that a heatmap was drawn. */
  distinctColours: number;
}

declare global {
  interface Window {
    runHeatmapBench(options: HeatmapBenchOptions): Promise<HeatmapBenchPageResult>;
  }
}

/** A deterministic Δ-like matrix: positive, log-normal-ish, with structure along tokens and channels. */
function synthetic(tokens: number, channels: number): Float32Array {
  const data = new Float32Array(tokens * channels);
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (let t = 0; t < tokens; t++) {
    const burst = t % 97 === 0 ? 3 : 0;
    for (let c = 0; c < channels; c++) {
      const v = Math.sin(t * 0.013 + c * 0.0071) + Math.cos(c * 0.05) + burst + (rand() - 0.5);
      data[t * channels + c] = Math.exp(v - 2);
    }
  }
  return data;
}

/** The view of frame i: zoom in, pan right, pan left, zoom out, in 4 phases of 30 frames. */
function nextView(view: TokenView, i: number, tokens: number): TokenView {
  const phase = Math.floor(i / 30) % 4;
  if (phase === 0) return zoomView(view, 1.08, 0.4, tokens);
  if (phase === 1) return panView(view, 0.05, tokens);
  if (phase === 2) return panView(view, -0.05, tokens);
  return zoomView(view, 1 / 1.08, 0.6, tokens);
}


window.runHeatmapBench = async (o) => {
  const canvas = document.createElement('canvas');
  canvas.style.width = `${o.width}px`;
  canvas.style.height = `${o.height}px`;
  document.body.append(canvas);
  const f0 = performance.now();
  const data = synthetic(o.tokens, o.channels);
  const fillMs = performance.now() - f0;
  const range = valueRange(data, true);
  const renderer = new HeatmapRenderer(canvas);
  // The same context the renderer made (asking again for 'webgl2' returns it).
  const gl = canvas.getContext('webgl2') as WebGL2RenderingContext;
  const pixel = new Uint8Array(4);
  const sync = () => gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
  let view = fullView(o.tokens);
  const firstView = view;
  const u0 = performance.now();
  renderer.setData([data], o.tokens, o.channels);
  renderer.resize();
  renderer.draw({ layer: 0, view, range, log: true, colormap: 'viridis', highlightToken: null });
  sync();
  const uploadMs = performance.now() - u0;

  const frameIntervalsMs: number[] = [];
  const drawMs: number[] = [];
  await new Promise<void>((resolve) => {
    let i = 0;
    let last = 0;
    const step = (now: number) => {
      if (i > 0) frameIntervalsMs.push(now - last);
      last = now;
      if (i === o.frames) {
        resolve();
        return;
      }
      view = nextView(view, i, o.tokens);
      const a = performance.now();
      renderer.draw({ layer: 0, view, range, log: true, colormap: 'viridis', highlightToken: null });
      sync();
      drawMs.push(performance.now() - a);
      i++;
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });

  const full = new Uint8Array(canvas.width * canvas.height * 4);
  gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, full);
  const colours = new Set<number>();
  for (let p = 0; p < full.length; p += 4) colours.add(((full[p] as number) << 16) | ((full[p + 1] as number) << 8) | (full[p + 2] as number));
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const result: HeatmapBenchPageResult = {
    tokens: o.tokens,
    channels: o.channels,
    frames: o.frames,
    canvas: { width: canvas.width, height: canvas.height, devicePixelRatio: window.devicePixelRatio },
    renderer: String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER)),
    vendor: String(info ? gl.getParameter(info.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR)),
    fillMs,
    uploadMs,
    frameIntervalsMs,
    drawMs,
    firstView,
    lastView: view,
    distinctColours: colours.size,
  };
  renderer.destroy();
  canvas.remove();
  return result;
};
