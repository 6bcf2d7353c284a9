/**
 * Runs one mixer alone on the GPU (no model): a MixerBuild over weights given as float arrays
 * (stored as f32, f16 or Q8_0 on the GPU; the table holds the values the GPU sees, i.e. after
 * rounding or quantizing, for the float64 references), and one MixerContext per call of `run`.
 */
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { dequantizeBlocks } from '../../app/formats/ggml-quants';
import type { Dispatch } from '../../app/kernels/dispatch';
import { roundToF16, uploadF16 } from '../../app/kernels/f16';
import { uploadBlocks, type WeightFormat } from '../../app/kernels/weight-format';
import type { MambaConfig } from '../../app/model/config';
import { fp32Linear, type Mixer, type MixerBuild, type MixerState, type ModelTaps } from '../../app/model/mixer';
import { quantize } from './ggml-quantize';

export interface HarnessWeight {
  values: Float32Array;
  format?: 'f32' | 'f16' | 'q8_0';
}

export interface MixerHarness {
  build: MixerBuild;
  /** The weights by their full name (`prefix` + name), as the GPU sees them. */
  table: Map<string, Float32Array>;
  prefix: string;
  destroy(): void;
}

/** A config whose only field a hybrid block reads is dModel. */
export function blockConfig(dModel: number): MambaConfig {
  // prettier-ignore
  return {
    architecture: 'hybrid-test', source: 'mamba_ssm', dModel, nLayer: 1, vocabSize: 1, dInner: 0, dState: 0, dConv: 0, dtRank: 0, nHeads: 0, headDim: 0, nGroups: 0,
    chunkSize: 0, timeStepLimit: [0, Infinity], normGroupSize: 0, normEps: 1e-5, mixerRmsEps: 0, useBias: false, useConvBias: false, tieEmbeddings: false,
  };
}

export function mixerHarness(ctx: GpuContext, o: { dModel: number; maxTokens: number; layer?: number; weights: Record<string, HarnessWeight> }): MixerHarness {
  const layer = o.layer ?? 0;
  const prefix = `backbone.layers.${layer}.mixer.`;
  const owned: GPUBuffer[] = [];
  const gpu = new Map<string, { buffer: GPUBuffer; format: WeightFormat }>();
  const table = new Map<string, Float32Array>();
  for (const [name, w] of Object.entries(o.weights)) {
    const format = w.format ?? 'f32';
    let buffer: GPUBuffer;
    let seen: Float32Array;
    if (format === 'f16') {
      buffer = uploadF16(ctx.device, `Test.${name}`, w.values);
      seen = roundToF16(w.values);
    } else if (format === 'q8_0') {
      const bytes = quantize('Q8_0', w.values);
      buffer = uploadBlocks(ctx.device, `Test.${name}`, format, bytes);
      seen = dequantizeBlocks('test', { name, dtype: 'Q8_0' }, bytes, w.values.length);
    } else {
      buffer = uploadF32(ctx.device, `Test.${name}`, w.values);
      seen = w.values;
    }
    owned.push(buffer);
    gpu.set(name, { buffer, format });
    table.set(prefix + name, seen);
  }
  const shared = new Map<string, unknown>();
  const build: MixerBuild = {
    ctx,
    config: blockConfig(o.dModel),
    maxTokens: o.maxTokens,
    layer,
    weights: {
      weight(name) {
        const w = gpu.get(name);
        if (!w) throw new Error(`test harness: no weight ${name}`);
        return w.buffer;
      },
      optional: (name) => gpu.get(name)?.buffer ?? null,
      has: (name) => gpu.has(name),
      format: (name) => gpu.get(name)?.format ?? 'f32',
    },
    shared<T>(key: string, make: () => T): T {
      if (!shared.has(key)) shared.set(key, make());
      return shared.get(key) as T;
    },
    activation(label, elements) {
      const buffer = storageBuffer(ctx.device, `Test.activation.${label}`, elements * 4);
      owned.push(buffer);
      return buffer;
    },
  };
  return { build, table, prefix, destroy: () => owned.forEach((b) => b.destroy()) };
}

export interface MixerRun {
  tokens: number;
  /** [tokens, D] */
  input: Float32Array;
  state: MixerState;
  taps?: ModelTaps;
  knockRow?: number | null;
}

/** One encode of `mixer` over `tokens` rows, submitted and read back: the output [T, D]. */
export async function runMixer(ctx: GpuContext, h: MixerHarness, mixer: Mixer, r: MixerRun): Promise<Float32Array> {
  const { device } = ctx;
  const D = h.build.config.dModel;
  const input = uploadF32(device, 'Test.input', r.input);
  const output = uploadF32(device, 'Test.output', new Float32Array(r.tokens * D).fill(Number.NaN)); // poisoned: unwritten rows show
  const dispatches: Dispatch[] = [];
  await withErrorScopes(device, 'mixer test', () => {
    const encoder = device.createCommandEncoder({ label: 'Test.encoder' });
    let pass: GPUComputePassEncoder | null = null;
    const endPass = () => {
      pass?.end();
      pass = null;
    };
    const run = (d: Dispatch) => {
      dispatches.push(d);
      pass ??= encoder.beginComputePass({ label: 'Test.pass' });
      d.encode(pass);
    };
    mixer.encode({
      layer: h.build.layer,
      tokens: r.tokens,
      input,
      output,
      state: r.state,
      taps: r.taps,
      run,
      linear(name, shape, buffers, label) {
        if (buffers.gatedNorm) run(buffers.gatedNorm.norm()); // the fp32 path computes x first
        run(fp32Linear(ctx, h.build.weights, r.tokens, name, shape, buffers, label));
      },
      copy(from, to, rowBytes) {
        if (!to || !r.taps) return;
        endPass();
        encoder.copyBufferToBuffer(from, 0, to, r.taps.row0 * rowBytes, r.tokens * rowBytes);
      },
      knockDt() {},
      knockRow: r.knockRow ?? null,
    });
    endPass();
    device.queue.submit([encoder.finish()]);
  });
  const result = await readF32(device, output, r.tokens * D);
  for (const d of dispatches) d.destroy();
  input.destroy();
  output.destroy();
  return result;
}

/** Copies every buffer of a state into a fresh one (a fork). */
export function copyState(ctx: GpuContext, state: MixerState): MixerState {
  const encoder = ctx.device.createCommandEncoder({ label: 'Test.copyState' });
  const copies = state.map((b) => {
    const c = storageBuffer(ctx.device, `${b.label}.copy`, b.size);
    encoder.copyBufferToBuffer(b, 0, c, 0, b.size);
    return c;
  });
  ctx.device.queue.submit([encoder.finish()]);
  return copies;
}

/**
 * One fused decode step (`encodeDecode`) of `mixer` on a residual row [D] with the block norm
 * `normWeight` [D]: the residual after it (residual + the mixer's output on the normed row).
 */
export async function runMixerDecode(ctx: GpuContext, h: MixerHarness, mixer: Mixer, r: { residual: Float32Array; normWeight: Float32Array; eps: number; state: MixerState }): Promise<Float32Array> {
  const { device } = ctx;
  if (!mixer.encodeDecode || !mixer.canFuseDecode()) throw new Error('test harness: the mixer has no fused decode');
  const residual = uploadF32(device, 'Test.residual', r.residual);
  const normWeight = uploadF32(device, 'Test.normWeight', r.normWeight);
  const dispatches: Dispatch[] = [];
  await withErrorScopes(device, 'mixer decode test', () => {
    const encoder = device.createCommandEncoder({ label: 'Test.encoder' });
    const pass = encoder.beginComputePass({ label: 'Test.pass' });
    mixer.encodeDecode?.({
      layer: h.build.layer,
      residual,
      normWeight,
      eps: r.eps,
      state: r.state,
      taps: undefined,
      run(d) {
        dispatches.push(d);
        d.encode(pass);
      },
      copy() {},
    });
    pass.end();
    device.queue.submit([encoder.finish()]);
  });
  const result = await readF32(device, residual, r.residual.length);
  for (const d of dispatches) d.destroy();
  residual.destroy();
  normWeight.destroy();
  return result;
}
