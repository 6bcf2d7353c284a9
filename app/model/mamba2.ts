/**
 * Mamba-2 on the GPU: the mixer of each block (DESIGN.md; test/fixtures/golden/README.md for the
 * conventions of transformers). T tokens, Di = H·P, G groups, N = d_state:
 *   zxbcdt = in_proj(normed)                           matmul          [T, 2Di + 2GN + H] (z | xBC | dt)
 *   xc = silu(conv1d(xBC) + b)    (conv state carried)  causal-conv1d   [T, Di + 2GN]      (x | B | C)
 *   y = SSD(x, Δ = clamp(softplus(dt + dt_bias)), A, B, C, D)   ssd scan (chunked prefill, step decode)  [T, Di]
 *   g = RMSNorm(y · silu(z)) over normGroupSize channels · w   gated-rmsnorm   [T, Di]
 *   hidden = out_proj(g)                                matmul          [T, D]
 */
import type { ModelInspection } from '../formats/inspect.js';
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { causalConv1d } from '../kernels/causal-conv1d.js';
import { gatedRmsNorm } from '../kernels/gated-rmsnorm.js';
import { MATMUL_SCRATCH_ELEMENTS, matmul } from '../kernels/matmul.js';
import { normMatvec, normMatvecFits, packConvWeights } from '../kernels/norm-matvec.js';
import { convXbc, mamba2InProjDt, mamba2InProjZ, mamba2Layout, packSsdWeights, ssdScan, ssdScratchElements, type Mamba2Dims, type SsdScratch, type SsdWeights } from '../kernels/ssd.js';
import { MambaModel, type DecodeLayerContext, type MixerContext, type RecurrentState } from './base.js';
import type { LoadedWeights } from './loader.js';

export class Mamba2 extends MambaModel {
  private readonly ssdWeights: SsdWeights[];
  private readonly dims: Mamba2Dims;
  private readonly act: { zxbcdt: GPUBuffer; xc: GPUBuffer; y: GPUBuffer; gated: GPUBuffer; delta: GPUBuffer };
  /**
   * Prefill scratch shared by every layer (they run one after another): the SSD's chunk buffers
   * for maxTokens, and split-K partials of the matmuls. Allocated once, not per plan.
   */
  private readonly scratch: { ssd: SsdScratch; matmul: GPUBuffer } | null;
  /** Per layer, for the fused decode: conv1d weight and bias packed (null when it does not apply). */
  private convWeights: GPUBuffer[] | null = null;

  constructor(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, maxTokens = 256) {
    if (inspection.architecture !== 'mamba2') throw new Error(`Mamba2 cannot run a ${inspection.architecture} model`);
    super(ctx, inspection, weights, maxTokens, 'Mamba2');
    const { dInner: Di, nGroups: G, dState: N, nHeads: H, nLayer: L } = this.config;
    this.dims = { dInner: Di, nGroups: G, dState: N, nHeads: H };
    this.ssdWeights = Array.from({ length: L }, (_, l) => {
      const m = `${this.prefix}layers.${l}.mixer.`;
      return packSsdWeights(ctx, { aLog: this.w(`${m}A_log`), d: this.w(`${m}D`), dtBias: this.w(`${m}dt_bias`) }, H, `Mamba2.L${l}.ssdWeights`);
    });
    const layout = mamba2Layout(this.dims);
    const T = maxTokens;
    this.act = {
      zxbcdt: this.activation('zxbcdt', T * layout.inProjWidth),
      xc: this.activation('xc', T * layout.xbcWidth),
      y: this.activation('y', T * Di),
      gated: this.activation('gated', T * Di),
      delta: this.activation('delta', T * H),
    };
    const chunk = Math.min(this.config.chunkSize, 1024);
    const sizes = ssdScratchElements({ tokens: T, nHeads: H, headDim: this.config.headDim, nGroups: G, dState: N }, chunk);
    this.scratch =
      T > 1
        ? {
            ssd: { cums: this.activation('ssdCums', sizes.cums), chunkState: this.activation('ssdChunkState', sizes.chunkState), cb: this.activation('ssdCb', sizes.cb) },
            matmul: this.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS),
          }
        : null;
  }

  newState(): RecurrentState {
    const { dInner: Di, dState: N, dConv: K, nLayer: L, nGroups: G } = this.config;
    const channels = Di + 2 * G * N;
    const conv = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba2.state.conv.${l}`, channels * (K - 1) * 4));
    const ssm = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba2.state.ssm.${l}`, Di * N * 4)); // [H, P, N]
    return { conv, ssm };
  }

  get stateBytes(): number {
    const { dInner: Di, dState: N, dConv: K, nLayer: L, nGroups: G } = this.config;
    return L * ((Di + 2 * G * N) * (K - 1) + Di * N) * 4;
  }

  protected mixer(m: MixerContext): void {
    const c = this.config;
    const { dModel: D, dInner: Di, dConv: K, nHeads: H } = c;
    const { tokens: T, layer: l, run, copy, taps } = m;
    const a = this.act;
    const ctx = this.ctx;
    const layout = mamba2Layout(this.dims);
    const scratch = this.scratch?.matmul;
    run(
      matmul(ctx, { tokens: T, inFeatures: D, outFeatures: layout.inProjWidth, weightFormat: m.format('in_proj.weight') }, { x: m.input, weight: m.weight('in_proj.weight'), bias: m.optional('in_proj.bias'), y: a.zxbcdt, scratch }, `Mamba2.L${l}.in_proj`),
    );
    run(
      causalConv1d(
        ctx,
        { tokens: T, channels: layout.xbcWidth, kernelSize: K, xOffset: layout.xbcOffset, xStride: layout.inProjWidth },
        { x: a.zxbcdt, weight: m.weight('conv1d.weight'), bias: m.optional('conv1d.bias'), convState: m.state.conv[l] as GPUBuffer, output: a.xc },
        `Mamba2.L${l}.conv1d`,
      ),
    );
    copy(a.xc, taps?.dbc?.[l], layout.xbcWidth * 4);
    m.knockDt(a.zxbcdt, layout.inProjWidth, layout.dtOffset, H);
    run(
      ssdScan(
        ctx,
        { tokens: T, nHeads: H, headDim: c.headDim, nGroups: c.nGroups, dState: c.dState },
        {
          xbc: convXbc(a.xc, this.dims),
          dt: mamba2InProjDt(a.zxbcdt, this.dims),
          weights: this.ssdWeights[l] as SsdWeights,
          y: a.y,
          state: m.state.ssm[l] as GPUBuffer,
          ...(taps?.delta?.[l] ? { delta: a.delta } : {}),
          ...(this.scratch ? { scratch: this.scratch.ssd } : {}),
        },
        `Mamba2.L${l}.ssd`,
        { chunkLength: Math.min(c.chunkSize, 1024), timeStepLimit: c.timeStepLimit },
      ),
    );
    copy(a.delta, taps?.delta?.[l], H * 4);
    run(
      gatedRmsNorm(
        ctx,
        { rows: T, cols: Di, groupSize: c.normGroupSize, eps: c.normEps },
        { y: a.y, z: mamba2InProjZ(a.zxbcdt, this.dims), weight: m.weight('norm.weight'), output: a.gated },
        `Mamba2.L${l}.norm`,
      ),
    );
    run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: D, weightFormat: m.format('out_proj.weight') }, { x: a.gated, weight: m.weight('out_proj.weight'), bias: m.optional('out_proj.bias'), y: m.output, scratch }, `Mamba2.L${l}.out_proj`));
  }

  /**
   * The fused decode covers the usual checkpoints: no in_proj / out_proj bias, D and Di within the
   * fused kernel's limits, at most 8 norm groups.
   */
  private fusable(): boolean {
    const { dModel: D, dInner: Di, nLayer: L, normGroupSize, dConv: K } = this.config;
    for (let l = 0; l < L; l++) {
      const m = `${this.prefix}layers.${l}.mixer.`;
      if (this.weights.buffers.has(`${m}in_proj.bias`) || this.weights.buffers.has(`${m}out_proj.bias`)) return false;
      if (!normMatvecFits(D, this.format(`${m}in_proj.weight`))) return false;
      if (!normMatvecFits(Di, this.format(`${m}out_proj.weight`), Di / normGroupSize)) return false;
    }
    return Di % normGroupSize === 0 && K >= 2 && K <= 8;
  }

  protected override canFuseDecode(): boolean {
    if (this.convWeights === null && this.fusable()) {
      const layout = mamba2Layout(this.dims);
      this.convWeights = Array.from({ length: this.config.nLayer }, (_, l) => {
        const m = `${this.prefix}layers.${l}.mixer.`;
        const bias = this.weights.buffers.get(`${m}conv1d.bias`) ?? null;
        return packConvWeights(this.ctx, this.w(`${m}conv1d.weight`), bias, layout.xbcWidth, this.config.dConv, `Mamba2.L${l}.convWeights`);
      });
    }
    return this.convWeights !== null;
  }

  /**
   * One decode token through one layer in 3 dispatches (instead of norm, in_proj, conv, ssd, gated
   * norm, out_proj):
   *   zxbcdt = in_proj(RMSNorm(residual)), its xBC channels through the conv step + silu   norm-matvec
   *   y = SSD step (x, B, C read in place from zxbcdt)                                    ssd step
   *   residual += out_proj(RMSNorm_group(y · silu(z)) · w)                                norm-matvec (gated, accumulate)
   */
  protected override decodeLayer(m: DecodeLayerContext): void {
    const c = this.config;
    const { dModel: D, dInner: Di, dConv: K, nHeads: H, nGroups: G, dState: N } = c;
    const { layer: l, run } = m;
    const a = this.act;
    const ctx = this.ctx;
    const layout = mamba2Layout(this.dims);
    run(
      normMatvec(
        ctx,
        { inFeatures: D, outFeatures: layout.inProjWidth, norm: 'rms', eps: m.eps, conv: { start: layout.xbcOffset, channels: layout.xbcWidth, kernelSize: K }, weightFormat: m.format('in_proj.weight') },
        { x: m.residual, g: m.normWeight, weight: m.weight('in_proj.weight'), conv: (this.convWeights as GPUBuffer[])[l] as GPUBuffer, convState: m.state.conv[l] as GPUBuffer, y: a.zxbcdt },
        `Mamba2.L${l}.norm_in_proj_conv`,
      ),
    );
    run(
      ssdScan(
        ctx,
        { tokens: 1, nHeads: H, headDim: c.headDim, nGroups: G, dState: N },
        {
          xbc: { buffer: a.zxbcdt, rowStride: layout.inProjWidth, xOffset: layout.xbcOffset, bOffset: layout.xbcOffset + Di, cOffset: layout.xbcOffset + Di + G * N },
          dt: mamba2InProjDt(a.zxbcdt, this.dims),
          weights: this.ssdWeights[l] as SsdWeights,
          y: a.y,
          state: m.state.ssm[l] as GPUBuffer,
        },
        `Mamba2.L${l}.ssd`,
        { chunkLength: Math.min(c.chunkSize, 1024), timeStepLimit: c.timeStepLimit },
      ),
    );
    run(
      normMatvec(
        ctx,
        { inFeatures: Di, outFeatures: D, norm: 'gated-rms', eps: c.normEps, groupSize: c.normGroupSize, zOffset: layout.zOffset, accumulate: true, weightFormat: m.format('out_proj.weight') },
        { x: a.y, z: a.zxbcdt, g: m.weight('norm.weight'), weight: m.weight('out_proj.weight'), y: m.residual },
        `Mamba2.L${l}.gated_norm_out_proj_residual`,
      ),
    );
  }

  override destroy(): void {
    super.destroy();
    for (const b of this.convWeights ?? []) b.destroy();
    for (const w of this.ssdWeights) w.destroy();
  }
}
