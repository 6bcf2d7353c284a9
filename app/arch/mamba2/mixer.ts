/**
 * The Mamba-2 mixer on the GPU: one layer's SSD (docs/ARCHITECTURE.md; test/fixtures/golden/README.md
 * for the conventions of transformers). T tokens, Di = H·P, G groups, N = d_state:
 *   zxbcdt = in_proj(normed)                           matmul          [T, 2Di + 2GN + H] (z | xBC | dt)
 *   xc = silu(conv1d(xBC) + b)    (conv state carried)  causal-conv1d   [T, Di + 2GN]      (x | B | C)
 *   y = SSD(x, Δ = clamp(softplus(dt + dt_bias)), A, B, C, D)   ssd scan (chunked prefill, step decode)  [T, Di]
 *   g = RMSNorm(y · silu(z)) over normGroupSize channels · w   gated-rmsnorm   [T, Di]
 *   hidden = out_proj(g)                                matmul          [T, D]
 *
 * Activations and prefill scratch are shared by every Mamba-2 layer of the model. State per
 * sequence: [conv ((Di + 2GN) × (K−1)), ssm (H × P × N)].
 */
import { storageBuffer } from '../../gpu/buffers.js';
import { causalConv1d } from '../../kernels/causal-conv1d.js';
import { gatedRmsNorm } from '../../kernels/gated-rmsnorm.js';
import { MATMUL_SCRATCH_ELEMENTS, MATMUL_SCRATCH_KEY } from '../../kernels/matmul.js';
import { mamba2LayerGrid, mamba2LayerGridFits, mamba2LayerGridScratch } from '../../kernels/layer-grid.js';
import { normMatvec, normMatvecFits, packConvWeights } from '../../kernels/norm-matvec.js';
import { packSsdWeights, ssdScan, ssdStepNormSums, type SsdScratch, type SsdWeights } from '../../kernels/ssd.js';
import { asksDecodeTaps, stepSummarySlot, type DecodeLayerContext, type Mixer, type MixerBuild, type MixerContext, type MixerState, type TraceLayout } from '../../model/mixer.js';
import { convXbc, mamba2InProjDt, mamba2InProjZ, mamba2Layout, type Mamba2Dims } from './layout.js';
import { mamba2Activations, ssdChunkLength, type ActivationBuffer } from '../../model/memory.js';

interface Activations {
  zxbcdt: GPUBuffer;
  xc: GPUBuffer;
  y: GPUBuffer;
  gated: GPUBuffer;
  delta: GPUBuffer;
  /** Prefill scratch: the SSD's chunk buffers for maxTokens, and split-K partials of the matmuls (none for one-token models). */
  scratch: { ssd: SsdScratch; matmul: GPUBuffer } | null;
}

export class Mamba2Mixer implements Mixer {
  private readonly act: Activations;
  private readonly ssdWeights: SsdWeights;
  private readonly dims: Mamba2Dims;
  private readonly layout: ReturnType<typeof mamba2Layout>;
  /**
   * Tokens a chunk of the SSD prefill: the config's chunk_size (at most 1,024), or tuning.ssdChunk
   * where a benchmark forces another when the model is built (the same sums chunked otherwise:
   * shorter chunks do less of the quadratic intra-chunk work and carry more chunk states; the
   * memory plan assumes chunk_size).
   */
  private readonly chunkLength: number;
  /** conv1d weight and bias packed for the fused decode (made on first use; null when it does not apply). */
  private convWeights: GPUBuffer | null = null;
  private fusable: boolean | null = null;
  /** A traced fused decode's own in_proj output and Δ (made on first use): taps copied at the end of the step. */
  private tapped: { zxbcdt: GPUBuffer; delta: GPUBuffer } | null = null;

  constructor(
    private readonly b: MixerBuild,
    readonly trace: TraceLayout,
  ) {
    const c = b.config;
    const { dInner: Di, nGroups: G, dState: N, nHeads: H } = c;
    this.dims = { dInner: Di, nGroups: G, dState: N, nHeads: H };
    this.layout = mamba2Layout(this.dims);
    const w = b.weights;
    this.ssdWeights = packSsdWeights(b.ctx, { aLog: w.weight('A_log'), d: w.weight('D'), dtBias: w.weight('dt_bias') }, H, `Mamba2.L${b.layer}.ssdWeights`);
    const T = b.maxTokens;
    this.chunkLength = ssdChunkLength(c, b.ctx.tuning?.ssdChunk);
    this.act = b.shared<Activations>(
      'mamba2.activations',
      () => {
        // Sized by the memory plan's formulas (app/model/memory.ts), so that it counts these buffers exactly.
        const sizes = mamba2Activations(c, T, this.chunkLength);
        const make = (a: ActivationBuffer) => b.activation(a.label, a.elements);
        return {
          zxbcdt: make(sizes.zxbcdt),
          xc: make(sizes.xc),
          y: make(sizes.y),
          gated: make(sizes.gated),
          delta: make(sizes.delta),
          scratch:
            T > 1
              ? {
                  ssd: { cums: make(sizes.ssdCums), chunkState: make(sizes.ssdChunkState), cb: make(sizes.ssdCb) },
                  matmul: b.shared(MATMUL_SCRATCH_KEY, () => b.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS)),
                }
              : null,
        };
      },
    );
  }

  get stateBytes(): number {
    const { dInner: Di, dState: N, dConv: K } = this.b.config;
    return (this.layout.xbcWidth * (K - 1) + Di * N) * 4;
  }

  newState(): MixerState {
    const { dInner: Di, dState: N, dConv: K } = this.b.config;
    const l = this.b.layer;
    return [
      storageBuffer(this.b.ctx.device, `Mamba2.state.conv.${l}`, this.layout.xbcWidth * (K - 1) * 4),
      storageBuffer(this.b.ctx.device, `Mamba2.state.ssm.${l}`, Di * N * 4), // [H, P, N]
    ];
  }

  encode(m: MixerContext): void {
    const c = this.b.config;
    const { dModel: D, dInner: Di, dConv: K, nHeads: H } = c;
    const { tokens: T, layer: l, run, copy, taps } = m;
    const a = this.act;
    const ctx = this.b.ctx;
    const w = this.b.weights;
    const layout = this.layout;
    const scratch = a.scratch?.matmul;
    const [convState, ssmState] = m.state as [GPUBuffer, GPUBuffer];
    m.linear('in_proj.weight', { inFeatures: D, outFeatures: layout.inProjWidth }, { x: m.input, bias: w.optional('in_proj.bias'), y: a.zxbcdt, scratch }, `Mamba2.L${l}.in_proj`);
    run(
      causalConv1d(
        ctx,
        { tokens: T, channels: layout.xbcWidth, kernelSize: K, xOffset: layout.xbcOffset, xStride: layout.inProjWidth },
        { x: a.zxbcdt, weight: w.weight('conv1d.weight'), bias: w.optional('conv1d.bias'), convState, output: a.xc },
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
          weights: this.ssdWeights,
          y: a.y,
          state: ssmState,
          ...(taps?.delta?.[l] ? { delta: a.delta } : {}),
          ...(a.scratch ? { scratch: a.scratch.ssd } : {}),
        },
        `Mamba2.L${l}.ssd`,
        { chunkLength: this.chunkLength, timeStepLimit: c.timeStepLimit },
      ),
    );
    copy(a.delta, taps?.delta?.[l], H * 4);
    const z = mamba2InProjZ(a.zxbcdt, this.dims);
    const norm = () => gatedRmsNorm(ctx, { rows: T, cols: Di, groupSize: c.normGroupSize, eps: c.normEps }, { y: a.y, z, weight: w.weight('norm.weight'), output: a.gated }, `Mamba2.L${l}.norm`);
    // One norm group: out_proj's int8 quantize may take the norm in (MixerContext.linear decides).
    const gatedNorm = c.normGroupSize === Di ? { y: a.y, z, weight: w.weight('norm.weight'), eps: c.normEps, norm } : undefined;
    if (!gatedNorm) run(norm());
    m.linear('out_proj.weight', { inFeatures: Di, outFeatures: D }, { x: a.gated, bias: w.optional('out_proj.bias'), y: m.output, scratch, ...(gatedNorm ? { gatedNorm } : {}) }, `Mamba2.L${l}.out_proj`);
  }

  /**
   * The fused decode covers the usual checkpoints: no in_proj / out_proj bias, D and Di within the
   * fused kernel's limits, at most 8 norm groups.
   */
  canFuseDecode(): boolean {
    if (this.fusable === null) {
      const { dModel: D, dInner: Di, normGroupSize, dConv: K } = this.b.config;
      const w = this.b.weights;
      this.fusable =
        !w.has('in_proj.bias') &&
        !w.has('out_proj.bias') &&
        normMatvecFits(this.b.ctx, D, w.format('in_proj.weight')) &&
        // One group: out_proj reads its input in place (presummed norm), any Di.
        normMatvecFits(this.b.ctx, Di, w.format('out_proj.weight'), Di / normGroupSize, normGroupSize === Di) &&
        Di % normGroupSize === 0 &&
        K >= 2 &&
        K <= 8;
      if (this.fusable) this.convWeights = packConvWeights(this.b.ctx, w.weight('conv1d.weight'), w.optional('conv1d.bias'), this.layout.xbcWidth, K, `Mamba2.L${this.b.layer}.convWeights`);
    }
    return this.fusable;
  }

  /**
   * One decode token through one layer in 3 dispatches (instead of norm, in_proj, conv, ssd, gated
   * norm, out_proj):
   *   zxbcdt = in_proj(RMSNorm(residual)), its xBC channels through the conv step + silu   norm-matvec
   *   y = SSD step (x, B, C read in place from zxbcdt; · silu(z) there too with one norm group) ssd step
   *   residual += out_proj(RMSNorm_group(y · silu(z)) · w)                                norm-matvec (gated or presummed, accumulate)
   * With one norm group the step writes u · w (u = y · silu(z)) and Σ u² in one piece per step
   * workgroup (into the `gated` activation, unused by decode), so out_proj reads u · w in place and
   * only scales its row sums: no prologue over Di inputs (at mamba2-2.7b that prologue made out_proj
   * ~28 µs against ~17 for Mamba-1's out_proj of the same size; bench/RESULTS.md).
   */
  /** A traced step's taps the fused decode writes: Δ per head and the xBC row (x, B, C after the conv). */
  readonly decodeTaps = ['delta', 'dbc'] as const;
  /** The SSD step writes the layer's step summary slot when asked (app/kernels/step-summary.ts). */
  readonly decodeSummary = true;

  encodeDecode(m: DecodeLayerContext): void {
    const c = this.b.config;
    const { dModel: D, dInner: Di, dConv: K, nHeads: H, nGroups: G, dState: N } = c;
    const { layer: l, run, copy, taps } = m;
    const ctx = this.b.ctx;
    const w = this.b.weights;
    const layout = this.layout;
    const [convState, ssmState] = m.state as [GPUBuffer, GPUBuffer];
    const oneGroup = c.normGroupSize === Di;
    // Traced: the layer's own in_proj output and Δ (their taps copied at the end of the step).
    const own = asksDecodeTaps(taps, l) ? (this.tapped ??= this.tapBuffers()) : null;
    const summarySlot = stepSummarySlot(taps, l);
    const a = { zxbcdt: own?.zxbcdt ?? this.act.zxbcdt, delta: own?.delta ?? this.act.delta, y: this.act.y, sums: this.act.gated };
    if (m.grid && !own && !summarySlot && oneGroup && this.gridFits() && m.grid.scratchWords >= this.gridScratchWords()) {
      // The whole layer in one dispatch, its steps separated by grid barriers (app/kernels/layer-grid.ts).
      const [dtMin, dtMax] = c.timeStepLimit ?? [0, Infinity];
      run(
        mamba2LayerGrid(
          ctx,
          { row: layout, dModel: D, dInner: Di, nHeads: H, headDim: c.headDim, nGroups: G, dState: N, dConv: K, eps: m.eps, normEps: c.normEps, dtMin, dtMax, format: w.format('in_proj.weight') },
          {
            residual: m.residual,
            normWeight: m.normWeight,
            inProj: w.weight('in_proj.weight'),
            conv: this.convWeights as GPUBuffer,
            convState,
            ssdWeights: this.ssdWeights.buffer,
            ssmState,
            gatedNormWeight: w.weight('norm.weight'),
            outProj: w.weight('out_proj.weight'),
            control: m.grid,
          },
          `Mamba2.L${l}.grid`,
        ),
      );
      return;
    }
    const ssdShape = { tokens: 1, nHeads: H, headDim: c.headDim, nGroups: G, dState: N };
    const sumCount = ssdStepNormSums(ctx, ssdShape);
    run(
      normMatvec(
        ctx,
        { inFeatures: D, outFeatures: layout.inProjWidth, norm: 'rms', eps: m.eps, conv: { start: layout.xbcOffset, channels: layout.xbcWidth, kernelSize: K }, weightFormat: w.format('in_proj.weight') },
        { x: m.residual, g: m.normWeight, weight: w.weight('in_proj.weight'), conv: this.convWeights as GPUBuffer, convState, y: a.zxbcdt },
        `Mamba2.L${l}.norm_in_proj_conv`,
      ),
    );
    copy(a.zxbcdt, layout.xbcOffset * 4, taps?.dbc?.[l], layout.xbcWidth * 4, own !== null);
    run(
      ssdScan(
        ctx,
        ssdShape,
        {
          xbc: { buffer: a.zxbcdt, rowStride: layout.inProjWidth, xOffset: layout.xbcOffset, bOffset: layout.xbcOffset + Di, cOffset: layout.xbcOffset + Di + G * N },
          dt: mamba2InProjDt(a.zxbcdt, this.dims),
          weights: this.ssdWeights,
          y: a.y,
          state: ssmState,
          ...(taps?.delta?.[l] ? { delta: a.delta } : summarySlot ? { stepSummary: summarySlot } : {}),
        },
        `Mamba2.L${l}.ssd`,
        { chunkLength: this.chunkLength, timeStepLimit: c.timeStepLimit, ...(oneGroup ? { gateOffset: layout.zOffset, normSums: { g: w.weight('norm.weight'), sums: a.sums } } : {}) },
      ),
    );
    copy(a.delta, 0, taps?.delta?.[l], H * 4, own !== null);
    // One norm group: y leaves the step gated and times w, with Σ u² in pieces (the presummed norm:
    // its scale applied to the row sums); several groups: the gated group norm in the prologue.
    const outShape = oneGroup
      ? ({ inFeatures: Di, outFeatures: D, norm: 'rms-presummed', eps: c.normEps, sums: sumCount } as const)
      : ({ inFeatures: Di, outFeatures: D, norm: 'gated-rms', eps: c.normEps, groupSize: c.normGroupSize, zOffset: layout.zOffset } as const);
    run(
      normMatvec(
        ctx,
        { ...outShape, accumulate: true, weightFormat: w.format('out_proj.weight') },
        { x: a.y, z: a.zxbcdt, g: w.weight('norm.weight'), sums: a.sums, weight: w.weight('out_proj.weight'), y: m.residual },
        `Mamba2.L${l}.gated_norm_out_proj_residual`,
      ),
    );
  }

  /** Whether this layer's untraced decode step can run as one grid dispatch (both matrices in one format the grid kernel reads). */
  private gridFits(): boolean {
    const c = this.b.config;
    const w = this.b.weights;
    const format = w.format('in_proj.weight');
    return (
      format === w.format('out_proj.weight') &&
      mamba2LayerGridFits(this.b.ctx, { dModel: c.dModel, dInner: c.dInner, nHeads: c.nHeads, headDim: c.headDim, nGroups: c.nGroups, dState: c.dState, dConv: c.dConv, format })
    );
  }

  /** The grid dispatch's scratch (Model sizes the shared GridControl by the largest layer's). */
  gridScratchWords(): number {
    return mamba2LayerGridScratch(this.layout.inProjWidth, this.b.config.dInner);
  }

  /** One token's in_proj output and Δ for this layer alone (a traced fused decode). */
  private tapBuffers(): { zxbcdt: GPUBuffer; delta: GPUBuffer } {
    const name = (what: string) => `Mamba2.L${this.b.layer}.tapped.${what}`;
    const { device } = this.b.ctx;
    return { zxbcdt: storageBuffer(device, name('zxbcdt'), this.layout.inProjWidth * 4), delta: storageBuffer(device, name('delta'), this.b.config.nHeads * 4) };
  }

  destroy(): void {
    this.convWeights?.destroy();
    this.ssdWeights.destroy();
    for (const b of Object.values(this.tapped ?? {})) b.destroy();
  }
}
