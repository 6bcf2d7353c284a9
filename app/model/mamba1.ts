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
import { MATMUL_SCRATCH_ELEMENTS, matmul } from '../kernels/matmul.js';
import { normMatvec, normMatvecFits, packConvWeights } from '../kernels/norm-matvec.js';
import { inProjZ, packSelectiveScanWeights, selectiveScan, selectiveScanSummaryElements, xProjBC, type SelectiveScanWeights } from '../kernels/selective-scan.js';
import { MambaModel, type DecodeLayerContext, type MixerContext, type ModelTaps, type RecurrentState } from './base.js';
import type { LoadedWeights } from './loader.js';

export { encodeSteps, type ForwardPlan } from './base.js';
export type Mamba1State = RecurrentState;
export type Mamba1Taps = ModelTaps;

export class Mamba1 extends MambaModel {
  /** Per layer: A_log, D and dt_bias packed for the scan (made once at load). */
  private readonly scanWeights: SelectiveScanWeights[];
  private readonly act: { xz: GPUBuffer; xc: GPUBuffer; dbc: GPUBuffer; dtRaw: GPUBuffer; y: GPUBuffer; delta: GPUBuffer };
  /**
   * Prefill scratch shared by every layer (they run one after another): the scan's chunk
   * summaries for maxTokens and split-K partials of the matmuls. Allocated once, not per plan.
   */
  private readonly scratch: { summary: GPUBuffer | undefined; matmul: GPUBuffer } | null;
  /** Per layer, for the fused decode: conv1d weight and bias packed (null when it does not apply). */
  private readonly convWeights: GPUBuffer[] | null;

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
    const summary = selectiveScanSummaryElements(T, Di, N);
    this.scratch =
      T > 1 ? { summary: summary > 0 ? this.activation('scanSummary', summary) : undefined, matmul: this.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS) } : null;
    this.convWeights = this.fusable()
      ? Array.from({ length: L }, (_, l) => {
          const m = `${this.prefix}layers.${l}.mixer.`;
          const bias = this.weights.buffers.get(`${m}conv1d.bias`) ?? null;
          return packConvWeights(ctx, this.w(`${m}conv1d.weight`), bias, Di, this.config.dConv, `Mamba1.L${l}.convWeights`);
        })
      : null;
  }

  /**
   * The fused decode covers the usual checkpoints: no in_proj / out_proj bias, D and Di within the
   * fused kernel's limits for every layer's weight format.
   */
  private fusable(): boolean {
    const { dModel: D, dInner: Di, nLayer: L } = this.config;
    for (let l = 0; l < L; l++) {
      const m = `${this.prefix}layers.${l}.mixer.`;
      if (this.weights.buffers.has(`${m}in_proj.bias`) || this.weights.buffers.has(`${m}out_proj.bias`)) return false;
      if (!normMatvecFits(D, this.format(`${m}in_proj.weight`))) return false;
    }
    return Di >= 1 && this.config.dConv >= 2 && this.config.dConv <= 8;
  }

  protected override canFuseDecode(): boolean {
    return this.convWeights !== null;
  }

  /**
   * One decode token through one layer in 4 dispatches (instead of norm, in_proj, conv, x_proj,
   * dt_proj, scan, out_proj):
   *   xz = [silu(conv_step(in_proj(RMSNorm(residual))_x)) | in_proj(…)_z]   norm-matvec (norm + conv fused)
   *   dbc = x_proj(xc)                                                      matmul
   *   y = scan step with Δ = softplus(dt_proj(dt_r) + dt_bias), gated        selective-scan step_dt
   *   residual += out_proj(y)                                               matmul (accumulate)
   */
  protected override decodeLayer(m: DecodeLayerContext): void {
    const { dModel: D, dInner: Di, dState: N, dtRank: R, dConv: K } = this.config;
    const { layer: l, run } = m;
    const a = this.act;
    const ctx = this.ctx;
    run(
      normMatvec(
        ctx,
        { inFeatures: D, outFeatures: 2 * Di, norm: 'rms', eps: m.eps, conv: { start: 0, channels: Di, kernelSize: K }, weightFormat: m.format('in_proj.weight') },
        { x: m.residual, g: m.normWeight, weight: m.weight('in_proj.weight'), conv: (this.convWeights as GPUBuffer[])[l] as GPUBuffer, convState: m.state.conv[l] as GPUBuffer, y: a.xz },
        `Mamba1.L${l}.norm_in_proj_conv`,
      ),
    );
    run(matmul(ctx, { tokens: 1, inFeatures: Di, outFeatures: R + 2 * N, weightFormat: m.format('x_proj.weight') }, { x: a.xz, weight: m.weight('x_proj.weight'), y: a.dbc }, `Mamba1.L${l}.x_proj`));
    run(
      selectiveScan(
        ctx,
        { tokens: 1, dInner: Di, dState: N },
        {
          x: a.xz, // xc is the first Di of the fused in_proj's output
          dtProj: { weight: m.weight('dt_proj.weight'), rank: R, format: m.format('dt_proj.weight') },
          weights: this.scanWeights[l] as SelectiveScanWeights,
          bc: xProjBC(a.dbc, R, N),
          z: inProjZ(a.xz, Di),
          y: a.y,
          state: m.state.ssm[l] as GPUBuffer,
        },
        `Mamba1.L${l}.dt_proj_scan`,
      ),
    );
    run(
      matmul(
        ctx,
        { tokens: 1, inFeatures: Di, outFeatures: D, accumulate: true, weightFormat: m.format('out_proj.weight') },
        { x: a.y, weight: m.weight('out_proj.weight'), y: m.residual },
        `Mamba1.L${l}.out_proj_residual`,
      ),
    );
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
    const scratch = this.scratch?.matmul;
    run(matmul(ctx, { tokens: T, inFeatures: D, outFeatures: 2 * Di, weightFormat: m.format('in_proj.weight') }, { x: m.input, weight: m.weight('in_proj.weight'), bias: m.optional('in_proj.bias'), y: a.xz, scratch }, `Mamba1.L${l}.in_proj`));
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
    run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: R + 2 * N, weightFormat: m.format('x_proj.weight') }, { x: a.xc, weight: m.weight('x_proj.weight'), y: a.dbc, scratch }, `Mamba1.L${l}.x_proj`));
    copy(a.dbc, taps?.dbc?.[l], (R + 2 * N) * 4);
    run(matmul(ctx, { tokens: T, inFeatures: R, outFeatures: Di, xOffset: 0, xStride: R + 2 * N, weightFormat: m.format('dt_proj.weight') }, { x: a.dbc, weight: m.weight('dt_proj.weight'), y: a.dtRaw, scratch }, `Mamba1.L${l}.dt_proj`));
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
          ...(this.scratch?.summary ? { summary: this.scratch.summary } : {}),
        },
        `Mamba1.L${l}.scan`,
      ),
    );
    copy(a.delta, taps?.delta?.[l], Di * 4);
    copy(a.y, taps?.y?.[l], Di * 4);
    run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: D, weightFormat: m.format('out_proj.weight') }, { x: a.y, weight: m.weight('out_proj.weight'), bias: m.optional('out_proj.bias'), y: m.output, scratch }, `Mamba1.L${l}.out_proj`));
  }

  override destroy(): void {
    super.destroy();
    for (const b of this.convWeights ?? []) b.destroy();
    for (const w of this.scanWeights) w.destroy();
  }
}
