/**
 * Mamba-1 on the GPU: the mixer of each block as bound dispatches (DESIGN.md, "The math"); the
 * residual stream, norms, embedding and head are in base.ts.
 *
 * Mixer (T tokens, D = d_model, Di = d_inner, N = d_state, R = dt_rank):
 *   xz = in_proj(normed)                                      matmul             [T, 2Di]  (x | z)
 *   xc = silu(conv1d(x) + b)          (conv state carried)    causal-conv1d      [T, Di]
 *   dbc = x_proj(xc)                                          matmul             [T, R+2N] (dt_r | B | C)
 *   dtRaw = dt_proj.weight · dt_r     (bias added in the scan) matmul            [T, Di]
 *   y = scan(xc, Δ = softplus(dtRaw + dt_bias), A, B, C, D) · silu(z)   selective-scan  [T, Di]
 *   hidden = out_proj(y)                                      matmul             [T, D]
 *
 * Activations are sized for a chunk of at most `maxTokens` tokens; longer prompts run in chunks
 * with the conv and SSM states carried between them, so memory does not grow with the prompt.
 */
import type { ModelInspection } from '../formats/inspect.js';
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { causalConv1d } from '../kernels/causal-conv1d.js';
import { matmul } from '../kernels/matmul.js';
import { inProjZ, packSelectiveScanWeights, selectiveScan, xProjBC, type SelectiveScanWeights } from '../kernels/selective-scan.js';
import { MambaModel, type MixerContext, type ModelTaps, type RecurrentState } from './base.js';
import type { LoadedWeights } from './loader.js';

export { encodeSteps, type ForwardPlan } from './base.js';
export type Mamba1State = RecurrentState;
export type Mamba1Taps = ModelTaps;

export class Mamba1 extends MambaModel {
  /** Per layer: A_log, D and dt_bias packed for the scan (made once at load). */
  private readonly scanWeights: SelectiveScanWeights[];
  private readonly act: { xz: GPUBuffer; xc: GPUBuffer; dbc: GPUBuffer; dtRaw: GPUBuffer; y: GPUBuffer; delta: GPUBuffer };

  constructor(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, maxTokens = 256) {
    if (inspection.architecture !== 'mamba') throw new Error(`Mamba1 cannot run a ${inspection.architecture} model`);
    super(ctx, inspection, weights, maxTokens, 'Mamba1');
    const { dInner: Di, dState: N, dtRank: R, nLayer: L } = this.config;
    this.scanWeights = Array.from({ length: L }, (_, l) => {
      const m = `${this.prefix}layers.${l}.mixer.`;
      return packSelectiveScanWeights(ctx, { aLog: this.w(`${m}A_log`), d: this.w(`${m}D`), dtBias: this.w(`${m}dt_proj.bias`) }, { dInner: Di, dState: N }, `Mamba1.L${l}.scanWeights`);
    });
    const T = maxTokens;
    this.act = {
      xz: this.activation('xz', T * 2 * Di),
      xc: this.activation('xc', T * Di),
      dbc: this.activation('dbc', T * (R + 2 * N)),
      dtRaw: this.activation('dtRaw', T * Di),
      y: this.activation('y', T * Di),
      delta: this.activation('delta', T * Di),
    };
  }

  newState(): RecurrentState {
    const { dInner: Di, dState: N, dConv: K, nLayer: L } = this.config;
    const conv = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba1.state.conv.${l}`, Di * (K - 1) * 4));
    const ssm = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba1.state.ssm.${l}`, Di * N * 4));
    return { conv, ssm }; // createBuffer zero-initializes: a fresh sequence
  }

  get stateBytes(): number {
    const { dInner: Di, dState: N, dConv: K, nLayer: L } = this.config;
    return L * Di * (K - 1 + N) * 4;
  }

  protected mixer(m: MixerContext): void {
    const { dModel: D, dInner: Di, dState: N, dtRank: R, dConv: K } = this.config;
    const { tokens: T, layer: l, run, copy, taps } = m;
    const a = this.act;
    const ctx = this.ctx;
    run(matmul(ctx, { tokens: T, inFeatures: D, outFeatures: 2 * Di }, { x: m.input, weight: m.weight('in_proj.weight'), bias: m.optional('in_proj.bias'), y: a.xz }, `Mamba1.L${l}.in_proj`));
    copy(a.xz, taps?.xz?.[l], 2 * Di * 4);
    run(
      causalConv1d(
        ctx,
        { tokens: T, channels: Di, kernelSize: K, xOffset: 0, xStride: 2 * Di },
        { x: a.xz, weight: m.weight('conv1d.weight'), bias: m.optional('conv1d.bias'), convState: m.state.conv[l] as GPUBuffer, output: a.xc },
        `Mamba1.L${l}.conv1d`,
      ),
    );
    copy(a.xc, taps?.x?.[l], Di * 4);
    run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: R + 2 * N }, { x: a.xc, weight: m.weight('x_proj.weight'), y: a.dbc }, `Mamba1.L${l}.x_proj`));
    copy(a.dbc, taps?.dbc?.[l], (R + 2 * N) * 4);
    run(matmul(ctx, { tokens: T, inFeatures: R, outFeatures: Di, xOffset: 0, xStride: R + 2 * N }, { x: a.dbc, weight: m.weight('dt_proj.weight'), y: a.dtRaw }, `Mamba1.L${l}.dt_proj`));
    m.knockDt(a.dtRaw, Di, 0, Di);
    run(
      selectiveScan(
        ctx,
        { tokens: T, dInner: Di, dState: N },
        {
          x: a.xc,
          dtRaw: a.dtRaw,
          weights: this.scanWeights[l] as SelectiveScanWeights,
          bc: xProjBC(a.dbc, R, N),
          z: inProjZ(a.xz, Di),
          y: a.y,
          state: m.state.ssm[l] as GPUBuffer,
          ...(taps?.delta?.[l] ? { delta: a.delta } : {}),
        },
        `Mamba1.L${l}.scan`,
      ),
    );
    copy(a.delta, taps?.delta?.[l], Di * 4);
    copy(a.y, taps?.y?.[l], Di * 4);
    run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: D }, { x: a.y, weight: m.weight('out_proj.weight'), bias: m.optional('out_proj.bias'), y: m.output }, `Mamba1.L${l}.out_proj`));
  }

  override destroy(): void {
    super.destroy();
    for (const w of this.scanWeights) w.destroy();
  }
}
