/**
 * Soak benchmark: one long generation through the Engine exactly as the app drives it (live trace
 * on), with GPU and JS memory sampled as tokens stream. GPU memory is the engine's own ledger: every
 * buffer the device creates and has not destroyed (WebGPU has no query for the device's total),
 * counted by wrapping the device's createBuffer. JS memory is the heap after a full collection
 * (run node with --expose-gc; without it the numbers include garbage and say so).
 *
 * What "flat" means: after the first samples (warm-up: plans, pipelines, the live trace's buffers,
 * made once for prompt + max tokens), the GPU ledger must not grow at all, and the JS heap may grow
 * only by what the trace keeps on purpose — every token's Δ, B, C and summaries, which the app
 * shows — whose size per token the report computes from the model's trace layout.
 */
import { openAsBlob } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { inspectModel } from '../arch/inspect.js';
import { traceLayout } from '../arch/registry.js';
import { Engine } from '../engine/engine.js';
import type { EngineEvent, EngineRequestKind, EngineRequests } from '../engine/protocol.js';
import { folderModelFiles } from './folder.js';

export interface SoakSample {
  /** Tokens generated so far. */
  tokens: number;
  gpuBytes: number;
  gpuBuffers: number;
  /** The JS heap plus ArrayBuffers (where traced rows live). */
  heapBytes: number;
  seconds: number;
}

export interface SoakResult {
  model: string;
  adapter: string;
  tokens: number;
  tokensPerSecond: number;
  /** Whether the heap was measured after forced collections (node --expose-gc). */
  collected: boolean;
  /** Sampled while generating, every `every` tokens. */
  samples: SoakSample[];
  /** After the generation returned (the live trace's buffers freed) and after unloading the model. */
  afterGeneration: SoakSample;
  afterUnload: SoakSample;
  /** Growth after the warm-up samples, per generated token. */
  gpuBytesPerToken: number;
  heapBytesPerToken: number;
  /** What the live trace keeps in the JS heap per token on purpose (Δ, B, C, summaries, top next), for comparison. */
  traceBytesPerToken: number;
  notes: string[];
}

/** Wraps a GPU so that every device it makes counts its live buffers. */
function ledgerGpu(gpu: GPU, ledger: { bytes: number; buffers: number }): GPU {
  const countBuffers = (device: GPUDevice) => {
    const create = device.createBuffer.bind(device);
    (device as { createBuffer: GPUDevice['createBuffer'] }).createBuffer = (descriptor: GPUBufferDescriptor) => {
      const buffer = create(descriptor);
      ledger.bytes += buffer.size;
      ledger.buffers += 1;
      const destroy = buffer.destroy.bind(buffer);
      let destroyed = false;
      (buffer as { destroy: () => void }).destroy = () => {
        if (!destroyed) {
          destroyed = true;
          ledger.bytes -= buffer.size;
          ledger.buffers -= 1;
        }
        destroy();
      };
      return buffer;
    };
    return device;
  };
  return {
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return gpu.wgslLanguageFeatures;
    },
    requestAdapter: async (options?: GPURequestAdapterOptions) => {
      const adapter = await gpu.requestAdapter(options);
      if (!adapter) return null;
      const requestDevice = adapter.requestDevice.bind(adapter);
      (adapter as { requestDevice: GPUAdapter['requestDevice'] }).requestDevice = async (descriptor?: GPUDeviceDescriptor) => countBuffers(await requestDevice(descriptor));
      return adapter;
    },
  } as unknown as GPU;
}

/** The slope of y over x by least squares (0 with fewer than two points). */
function slope(points: [number, number][]): number {
  if (points.length < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / points.length;
  const my = points.reduce((s, [, y]) => s + y, 0) / points.length;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
}

export async function runSoak(
  gpu: GPU,
  modelDir: string,
  options: { tokens: number; every: number; prompt?: number[]; log?: (line: string) => void },
): Promise<SoakResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap = () => {
    gc?.();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers; // typed arrays' bytes live outside the V8 heap
  };
  const ledger = { bytes: 0, buffers: 0 };
  const log = options.log ?? (() => undefined);
  const names = (await readdir(modelDir)).filter((n) => /\.(json|safetensors|gguf|bin)$/i.test(n));
  const files = [];
  for (const name of names) {
    const full = path.join(modelDir, name);
    if (!(await stat(full)).isFile()) continue;
    files.push(Object.assign(await openAsBlob(full), { name }));
  }
  const samples: SoakSample[] = [];
  let started = 0;
  let generated = 0;
  let next = 0;
  const sample = () => {
    samples.push({ tokens: generated, gpuBytes: ledger.bytes, gpuBuffers: ledger.buffers, heapBytes: heap(), seconds: (performance.now() - started) / 1000 });
    const s = samples[samples.length - 1] as SoakSample;
    log(`${s.tokens} tokens: GPU ${(s.gpuBytes / 2 ** 20).toFixed(1)} MiB in ${s.gpuBuffers} buffers, JS heap ${(s.heapBytes / 2 ** 20).toFixed(1)} MiB, ${s.seconds.toFixed(1)} s`);
  };
  const onEvent = (event: EngineEvent) => {
    if (event.kind !== 'token' || event.index < 0) return;
    generated = event.index + 1;
    if (generated >= next) {
      next += options.every;
      sample();
    }
  };
  const engine = new Engine(ledgerGpu(gpu, ledger), onEvent, 'node');
  let id = 0;
  const ask = async <K extends EngineRequestKind>(kind: K, params: EngineRequests[K]['params']): Promise<EngineRequests[K]['result']> => {
    const reply = await engine.handle({ id: ++id, kind, params } as Parameters<Engine['handle']>[0]);
    if (!reply.ok) throw new Error(`${kind}: ${reply.error}`);
    return reply.result as EngineRequests[K]['result'];
  };
  const init = await ask('init', {});
  if (init.state !== 'ready') throw new Error(`no GPU: ${init.reason}`);
  const modelId = path.basename(modelDir);
  const loaded = await ask('loadModel', { modelId, source: { kind: 'files', folder: modelId, files } });
  const prompt = options.prompt ?? [1];
  started = performance.now();
  next = options.every;
  sample();
  const run = await ask('generate', {
    modelId, prompt: { ids: prompt }, maxTokens: options.tokens, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7, stopStrings: [], trace: true,
  });
  generated = run.ids.length;
  sample();
  const afterGeneration = samples.pop() as SoakSample;
  await ask('unloadModel', {});
  // ArrayBuffers' memory is released behind the collector: let it settle before the last sample.
  for (let i = 0; i < 5; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  sample();
  const afterUnload = samples.pop() as SoakSample;

  // Growth after warm-up: the samples from a fifth of the run on.
  const steady = samples.filter((s) => s.tokens >= options.tokens / 5);
  const config = loaded;
  const notes: string[] = [];
  if (!gc) notes.push('no forced collection (run node with --expose-gc): the JS heap includes garbage');
  if (run.ids.length < options.tokens) notes.push(`the generation stopped after ${run.ids.length} tokens (${run.stopReason})`);
  // What the engine keeps per traced token of every layer: Δ, B and C as float32 rows, four float32
  // summaries (‖Δ‖, write gate, state norm; per head too for Mamba-2), the token's id and text.
  const modelFiles = await folderModelFiles(modelDir);
  const inspection = await inspectModel(modelFiles).finally(() => modelFiles.close());
  const layout = traceLayout(inspection.config);
  const layers = inspection.config.nLayer;
  const perLayer = 4 * (layout.deltaWidth + 2 * layout.bcWidth + 3 + (layout.deltaUnit === 'head' ? layout.deltaWidth : 0));
  const traceBytesPerToken = layers * perLayer + 8 * 5 + 16;
  return {
    model: modelDir,
    adapter: init.description,
    tokens: run.ids.length,
    tokensPerSecond: run.tokensPerSecond,
    collected: gc !== undefined,
    samples,
    afterGeneration,
    afterUnload,
    gpuBytesPerToken: slope(steady.map((s) => [s.tokens, s.gpuBytes])),
    heapBytesPerToken: slope(steady.map((s) => [s.tokens, s.heapBytes])),
    traceBytesPerToken,
    notes: [...notes, `model: ${config.architecture}, ${config.parameters.toLocaleString('en-US')} parameters`],
  };
}
