/**
 * The MLP mixer (app/arch/hybrid/mlp.ts) and its activation op (app/kernels/mlp-act.ts) against
 * the float64 references (app/arch/hybrid/reference.ts, app/kernels/mlp-act.ref.ts) on fresh
 * random inputs of odd sizes: every activation, plain and gated (gate first or second), with and
 * without biases, and the fused decode (block norm and residual add folded in); Q8_0 and f16 weights once (the reference on the decoded values).
 */
import { describe, expect, it } from 'vitest';
import type { MlpConfig } from '../../app/arch/hybrid/config';
import { mlpMixer } from '../../app/arch/hybrid/mlp';
import { mlpRef } from '../../app/arch/hybrid/reference';
import type { GpuContext } from '../../app/gpu/context';
import { MLP_ACTIVATIONS } from '../../app/kernels/mlp-act';
import { randomF32, relativeError } from '../../app/kernels/self-test';
import { rmsnorm } from '../../app/model/reference';
import { useTestGpu } from '../support/gpu';
import { mixerHarness, runMixer, runMixerDecode, type HarnessWeight } from '../support/mixer-harness';

/** fp32 matmuls and activations: relative error ≤ 1e-4, as for the other kernels. */
const TOL = 1e-4;

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

interface Case {
  name: string;
  cfg: MlpConfig;
  D: number;
  T: number;
  format?: HarnessWeight['format'];
  biases: boolean;
}

const names = { up: 'fc1.weight', down: 'fc2.weight' };
const CASES: Case[] = [
  ...MLP_ACTIVATIONS.flatMap((activation, i): Case[] => [
    { name: `${activation}, not gated`, cfg: { intermediate: 43, activation, gated: false, gateFirst: false, names }, D: 19, T: 7 + i, biases: i % 2 === 0 },
    { name: `${activation}, gated, gate second (mamba_ssm GatedMLP)`, cfg: { intermediate: 37, activation, gated: true, gateFirst: false, names }, D: 23, T: 5 + i, biases: i % 2 === 1 },
  ]),
  { name: 'silu, gated, gate first (Granite), T = 1', cfg: { intermediate: 41, activation: 'silu', gated: true, gateFirst: true, names: { up: 'input_linear.weight', down: 'output_linear.weight' } }, D: 29, T: 1, biases: false },
  { name: 'relu2 (Nemotron-H) with Q8_0 weights', cfg: { intermediate: 96, activation: 'relu2', gated: false, gateFirst: false, names: { up: 'up_proj.weight', down: 'down_proj.weight' } }, D: 64, T: 13, format: 'q8_0', biases: false },
  { name: 'gelu_tanh, gated, gate first, with f16 weights', cfg: { intermediate: 45, activation: 'gelu_tanh', gated: true, gateFirst: true, names }, D: 21, T: 6, format: 'f16', biases: true },
  // llama.cpp's GGUFs: ffn_gate and ffn_up as separate matrices.
  { name: 'silu, separate gate and up (GGUF), gate first, biases', cfg: { intermediate: 39, activation: 'silu', gated: true, gateFirst: true, names: { up: 'ffn_up.weight', gate: 'ffn_gate.weight', down: 'ffn_down.weight' } }, D: 27, T: 9, biases: true },
  { name: 'gelu, separate gate and up, gate second, Q8_0, T = 1', cfg: { intermediate: 64, activation: 'gelu', gated: true, gateFirst: false, names: { up: 'ffn_up.weight', gate: 'ffn_gate.weight', down: 'ffn_down.weight' } }, D: 32, T: 1, format: 'q8_0', biases: false },
];

describe('MLP mixer (Dawn)', () => {
  it('every activation, gated or not, against the float64 reference', async (test) => {
    if (!ctx) return test.skip(skipReason);
    for (const [n, c] of CASES.entries()) {
      const s = seed + 37 * n;
      const { D, T, cfg } = c;
      const I = cfg.intermediate;
      const gate = cfg.names.gate;
      const upRows = cfg.gated && !gate ? 2 * I : I;
      const format = c.format ?? 'f32';
      const weights: Record<string, HarnessWeight> = {
        [cfg.names.up]: { values: randomF32(upRows * D, s + 1, 0.6), format },
        [cfg.names.down]: { values: randomF32(D * I, s + 2, 0.3), format },
        ...(gate ? { [gate]: { values: randomF32(I * D, s + 8, 0.6), format } } : {}),
      };
      if (c.biases) {
        weights[cfg.names.up.replace('.weight', '.bias')] = { values: randomF32(upRows, s + 3, 0.5) };
        weights[cfg.names.down.replace('.weight', '.bias')] = { values: randomF32(D, s + 4, 0.5) };
        if (gate) weights[gate.replace('.weight', '.bias')] = { values: randomF32(I, s + 9, 0.5) };
      }
      const h = mixerHarness(ctx, { dModel: D, maxTokens: 16, weights });
      const mixer = mlpMixer(h.build, cfg);
      try {
        expect(mixer.stateBytes).toBe(0);
        expect(mixer.newState()).toEqual([]);
        const x = randomF32(T * D, s + 5, 2);
        const ref = mlpRef(cfg)({ config: h.build.config, weights: (name) => h.table.get(name), mixer: h.prefix, layer: 0, input: Float64Array.from(x), tokens: T, knockToken: -1 });
        const got = await runMixer(ctx, h, mixer, { tokens: T, input: x, state: [] });
        expect(relativeError(got, ref.output), `${c.name} (seed ${s})`).toBeLessThanOrEqual(TOL);
        // The fused decode: residual row r → r + mlp(rmsnorm(r)·g).
        const r = randomF32(D, s + 6, 2);
        const g = randomF32(D, s + 7, 0.5).map((v) => v + 1);
        const normed = rmsnorm(Float64Array.from(r), 1, D, g, 1e-5);
        const one = mlpRef(cfg)({ config: h.build.config, weights: (name) => h.table.get(name), mixer: h.prefix, layer: 0, input: normed, tokens: 1, knockToken: -1 });
        const after = await runMixerDecode(ctx, h, mixer, { residual: r, normWeight: g, eps: 1e-5, state: [] });
        expect(relativeError(Float64Array.from(after, (v, i) => v - (r[i] as number)), one.output), `${c.name}, fused decode (seed ${s})`).toBeLessThanOrEqual(TOL);
      } finally {
        mixer.destroy();
        h.destroy();
      }
    }
  });
});
