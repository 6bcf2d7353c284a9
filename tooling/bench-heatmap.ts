/**
 * `npm run bench:heatmap`: frames per second of the Δ heatmap's pan and zoom on a 4,096 × 1,536
 * (tokens × channels) matrix. Serves tooling/bench-heatmap/ (a page that imports the app's own
 * heatmap-gl renderer and view functions) with Vite, opens it in Chromium through playwright-core
 * (the e2e tests' launcher and WebGPU/GL flags, test/support/browser.ts), draws the synthetic
 * matrix and changes the view every requestAnimationFrame for N frames, then prints the median
 * frame time and frames/s and writes the whole run as JSON to bench/results/heatmap-<date>.json.
 *
 *   npm run bench:heatmap -- [--tokens 4096] [--channels 1536] [--frames 240] [--width 1280] [--height 512] [--out file.json]
 *
 * Frame time = the interval between successive animation frames, each of which draws and waits
 * for the GPU (1-pixel readPixels); headless Chromium caps animation frames at the display rate
 * (60 Hz), so a fast GPU reads ~16.7 ms. tooling/run-bench-heatmap.js is the plain-Node entry (Vite's
 * runnerImport runs this TypeScript).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer, type ViteDevServer } from 'vite';
import type { Browser } from 'playwright-core';
import { findChromium, launchChromium } from '../test/support/browser';
import type { HeatmapBenchOptions, HeatmapBenchPageResult } from './bench-heatmap/page';

const root = path.resolve(import.meta.dirname, '..');

export const DEFAULT_OPTIONS: HeatmapBenchOptions = { tokens: 4096, channels: 1536, frames: 240, width: 1280, height: 512 };

export interface HeatmapBenchResult extends HeatmapBenchPageResult {
  date: string;
  chromium: string;
  chromiumVersion: string;
  host: { platform: string; cpus: number; cpuModel: string };
  summary: {
    medianFrameMs: number;
    p95FrameMs: number;
    framesPerSecond: number;
    medianDrawMs: number;
  };
}

export const percentile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
};

export async function runHeatmapBench(options: Partial<HeatmapBenchOptions> = {}): Promise<HeatmapBenchResult> {
  const o = { ...DEFAULT_OPTIONS, ...options };
  const found = findChromium();
  if ('reason' in found) throw new Error(found.reason);
  let server: ViteDevServer | null = null;
  let browser: Browser | null = null;
  try {
    server = await createServer({
      root,
      configFile: false,
      logLevel: 'warn',
      appType: 'mpa',
      optimizeDeps: { noDiscovery: true, include: [] },
      server: { host: '127.0.0.1', port: 5400 + Math.floor(Math.random() * 500), strictPort: false, hmr: false, watch: null },
    });
    await server.listen();
    const base = server.resolvedUrls?.local[0];
    if (!base) throw new Error('vite did not report a URL');
    browser = await launchChromium(found.path);
    const page = await browser.newPage({ viewport: { width: o.width + 32, height: o.height + 32 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(new URL('tooling/bench-heatmap/index.html', base).href);
    await page.waitForFunction(() => typeof window.runHeatmapBench === 'function', undefined, { timeout: 60_000 });
    const result = await page.evaluate((opts) => window.runHeatmapBench(opts), o);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    const medianFrameMs = percentile(result.frameIntervalsMs, 0.5);
    return {
      ...result,
      date: new Date().toISOString(),
      chromium: found.path,
      chromiumVersion: browser.version(),
      host: { platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '' },
      summary: {
        medianFrameMs,
        p95FrameMs: percentile(result.frameIntervalsMs, 0.95),
        framesPerSecond: 1000 / medianFrameMs,
        medianDrawMs: percentile(result.drawMs, 0.5),
      },
    };
  } finally {
    await browser?.close();
    await server?.close();
  }
}

function parseArgs(argv: readonly string[]): { options: Partial<HeatmapBenchOptions>; out: string | null } {
  const options: Partial<HeatmapBenchOptions> = {};
  let out: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = argv[i + 1];
    const key = arg.replace(/^--/, '');
    if (key === 'out' && value) {
      out = value;
      i++;
    } else if ((key === 'tokens' || key === 'channels' || key === 'frames' || key === 'width' || key === 'height') && value && /^\d+$/.test(value)) {
      options[key] = Number(value);
      i++;
    } else throw new Error(`bench:heatmap: unknown or incomplete argument "${arg}" (--tokens N --channels N --frames N --width N --height N --out file)`);
  }
  return { options, out };
}

export async function main(argv: readonly string[]): Promise<number> {
  const { options, out } = parseArgs(argv);
  const r = await runHeatmapBench(options);
  const s = r.summary;
  console.log(
    `heatmap ${r.tokens} × ${r.channels}, canvas ${r.canvas.width}×${r.canvas.height} px, ${r.frames} frames of pan/zoom on ${r.renderer}: ` +
      `median frame ${s.medianFrameMs.toFixed(2)} ms (${s.framesPerSecond.toFixed(1)} frames/s), p95 ${s.p95FrameMs.toFixed(2)} ms, ` +
      `median draw + GPU wait ${s.medianDrawMs.toFixed(2)} ms, upload ${r.uploadMs.toFixed(0)} ms`,
  );
  const file = out ?? path.join(root, 'bench/results', `heatmap-${r.date.slice(0, 10)}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  return 0;
}
