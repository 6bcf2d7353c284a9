/**
 * The Mamba-1 mixer on the GPU: one layer's selective scan (S6) as bound dispatches
 * (docs/ARCHITECTURE.md, "The math").
 *
 * Mixer (T tokens, D = d_model, Di = d_inner, N = d_state, R = dt_rank):
 *   xz = in_proj(normed)                                      matmul             [T, 2Di]  (x | z)
 *   xc = silu(conv1d(x) + b)          (conv state carried)    causal-conv1d      [T, Di]
 *   dbc = x_proj(xc)                                          matmul             [T, R+2N] (dt_r | B | C)
 *   Falcon-Mamba (config.mixerRmsEps > 0): each of dt_r, B, C ← v / sqrt(mean(v²) + eps), in place
 *                                                             segment-rmsnorm    [T, R+2N]
 *   dtRaw = dt_proj.weight · dt_r     (bias added in the scan) matmul            [T, Di]
 *   y = scan(xc, Δ = softplus(dtRaw + dt_bias), A, B, C, D) · silu(z)   selective-scan  [T, Di]
 *   hidden = out_proj(y)                                      matmul             [T, D]
 *
 * Activations are sized for a chunk of at most `maxTokens` tokens and shared by every Mamba-1
 * layer of the model (they run one after another); longer prompts run in chunks with the conv and
 * SSM states carried between them, so memory does not grow with the prompt. State per sequence:
 * [conv (Di × (K−1)), ssm (Di × N)].
 */
import { storageBuffer } from '../../gpu/buffers.js';
import { causalConv1d } from '../../kernels/causal-conv1d.js';
import type { Dispatch } from '../../kernels/dispatch.js';
import { segmentRmsNorm } from '../../kernels/segment-rmsnorm.js';
import { MATMUL_SCRATCH_ELEMENTS, MATMUL_SCRATCH_KEY, matmul } from '../../kernels/matmul.js';
import { normMatvec, normMatvecFits, packConvWeights, xProjFoldable, xProjPartialLayout, type NormMatvecBuffers, type NormMatvecShape } from '../../kernels/norm-matvec.js';
import { MAX_FOLDED_XPROJ, packSelectiveScanWeights, selectiveScan, type SelectiveScanWeights } from '../../kernels/selective-scan.js';
import { asksDecodeTaps, stepSummarySlot, type DecodeLayerContext, type Mixer, type MixerBuild, type MixerContext, type MixerState, type TraceLayout } from '../../model/mixer.js';
import { inProjZ, xProjBC, xProjSegments } from './layout.js';
import { mamba1Activations, type ActivationBuffer } from '../../model/memory.js';

interface Activations {
  xz: GPUBuffer;
  xc: GPUBuffer;
  dbc: GPUBuffer;
  dtRaw: GPUBuffer;
  y: GPUBuffer;
  delta: GPUBuffer;
  /** Prefill scratch: the scan's chunk summaries for maxTokens and split-K partials of the matmuls (none for one-token models). */
  scratch: { summary: GPUBuffer | undefined; matmul: GPUBuffer } | null;
}

export class Mamba1Mixer implements Mixer {
  private readonly act: Activations;
  /** A_log, D and dt_bias packed for the scan (made once at build). */
  private readonly scanWeights: SelectiveScanWeights;
  /** conv1d weight and bias packed for the fused decode (made on first use; null when it does not apply). */
  private convWeights: GPUBuffer | null = null;
  private fusable: boolean | null = null;
  /**
   * A traced fused decode's own one-token activations (made on first use, ~16·Di bytes): its taps
   * are copied at the end of the step, all at once, instead of between the kernels.
   */
  private tapped: { xz: GPUBuffer; dbc: GPUBuffer; delta: GPUBuffer; y: GPUBuffer } | null = null;

  constructor(
    private readonly b: MixerBuild,
    readonly trace: TraceLayout,
  ) {
    const { dInner: Di, dState: N } = b.config;
    const w = b.weights;
    this.scanWeights = packSelectiveScanWeights(b.ctx, { aLog: w.weight('A_log'), d: w.weight('D'), dtBias: w.weight('dt_proj.bias') }, { dInner: Di, dState: N }, `Mamba1.L${b.layer}.scanWeights`);
    const T = b.maxTokens;
    this.act = b.shared<Activations>(
      'mamba1.activations',
      () => {
        // Sized by the memory plan's formulas (app/model/memory.ts), so that it counts these buffers exactly.
        const sizes = mamba1Activations(b.config, T);
        const make = (a: ActivationBuffer) => b.activation(a.label, a.elements);
        return {
          xz: make(sizes.xz),
          xc: make(sizes.xc),
          dbc: make(sizes.dbc),
          dtRaw: make(sizes.dtRaw),
          y: make(sizes.y),
          delta: make(sizes.delta),
          scratch: T > 1 ? { summary: sizes.scanSummary.elements > 0 ? make(sizes.scanSummary) : undefined, matmul: b.shared(MATMUL_SCRATCH_KEY, () => b.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS)) } : null,
        };
      },
    );
  }

  get stateBytes(): number {
    const { dInner: Di, dState: N, dConv: K } = this.b.config;
    return Di * (K - 1 + N) * 4;
  }

  newState(): MixerState {
    const { dInner: Di, dState: N, dConv: K } = this.b.config;
    const l = this.b.layer;
    // createBuffer zero-initializes: a fresh sequence.
    return [storageBuffer(this.b.ctx.device, `Mamba1.state.conv.${l}`, Di * (K - 1) * 4), storageBuffer(this.b.ctx.device, `Mamba1.state.ssm.${l}`, Di * N * 4)];
  }

  /**
   * The fused decode covers the usual checkpoints: no in_proj / out_proj bias, D and Di within the
   * fused kernel's limits for the weight format.
   */
  canFuseDecode(): boolean {
    if (this.fusable === null) {
      const { dModel: D, dInner: Di, dConv: K } = this.b.config;
      const w = this.b.weights;
      this.fusable = !w.has('in_proj.bias') && !w.has('out_proj.bias') && normMatvecFits(this.b.ctx, D, w.format('in_proj.weight')) && Di >= 1 && K >= 2 && K <= 8;
      if (this.fusable) this.convWeights = packConvWeights(this.b.ctx, w.weight('conv1d.weight'), w.optional('conv1d.bias'), Di, K, `Mamba1.L${this.b.layer}.convWeights`);
    }
    return this.fusable;
  }

  /**
   * One decode token through one layer in 4 dispatches (instead of norm, in_proj, conv, x_proj,
   * dt_proj, scan, out_proj; Falcon-Mamba: 5, its dt_r/B/C norm after x_proj):
   *   xz = [silu(conv_step(in_proj(RMSNorm(residual))_x)) | in_proj(…)_z]   norm-matvec (norm + conv fused)
   *   dbc = x_proj(xc)                                                      norm-matvec (no norm; matmul where Di does not fit it)
   *   y = scan step with Δ = softplus(dt_proj(dt_r) + dt_bias), gated        selective-scan step_dt
   *   residual += out_proj(y)                                               norm-matvec (accumulate; or matmul)
   * With tuning.decodeXProj 'folded' (an untraced layer, x_proj in f32 / f16 / bf16): 3 for both,
   * in_proj's blocks of rows writing x_proj's partial sums over their conv channels and the step
   * (step_xp) adding them, then Falcon-Mamba's norm.
   */
  /** A traced step's taps the fused decode writes: Δ, dt_r|B|C, x (the conv output) and y; not in_proj's raw x|z (the conv overwrites x). */
  readonly decodeTaps = ['delta', 'dbc', 'x', 'y'] as const;
  /** The scan step writes the layer's step summary slot when asked (app/kernels/step-summary.ts). */
  readonly decodeSummary = true;

  encodeDecode(m: DecodeLayerContext): void {
    const { dModel: D, dInner: Di, dState: N, dtRank: R, dConv: K } = this.b.config;
    const { layer: l, run, copy, taps } = m;
    const ctx = this.b.ctx;
    const w = this.b.weights;
    const [convState, ssmState] = m.state as [GPUBuffer, GPUBuffer];
    const own = asksDecodeTaps(taps, l) ? (this.tapped ??= this.tapBuffers()) : null;
    const summarySlot = stepSummarySlot(taps, l);
    const inProj: NormMatvecShape = { inFeatures: D, outFeatures: 2 * Di, norm: 'rms', eps: m.eps, conv: { start: 0, channels: Di, kernelSize: K }, weightFormat: w.format('in_proj.weight') };
    const inProjBuffers = (y: GPUBuffer) => ({ x: m.residual, g: m.normWeight, weight: w.weight('in_proj.weight'), conv: this.convWeights as GPUBuffer, convState, y });
    const xProjFormat = w.format('x_proj.weight');
    if (own === null && ctx.tuning?.decodeXProj === 'folded' && xProjFoldable(ctx, xProjFormat) && R + 2 * N <= MAX_FOLDED_XPROJ) {
      this.encodeFoldedDecode(m, inProj, inProjBuffers(this.act.xz), summarySlot);
      return;
    }
    // Traced: the layer's own buffers (their taps copied at the end of the step); Falcon-Mamba's
    // dt_r|B|C norm works on the shared x_proj output, so that tap is copied where it is made.
    const norm = this.mixerNorm(1, `Mamba1.L${l}.dt_b_c_rms`);
    const a = { xz: own?.xz ?? this.act.xz, dbc: own && !norm ? own.dbc : this.act.dbc, delta: own?.delta ?? this.act.delta, y: own?.y ?? this.act.y };
    run(normMatvec(ctx, inProj, inProjBuffers(a.xz), `Mamba1.L${l}.norm_in_proj_conv`));
    copy(a.xz, 0, taps?.x?.[l], Di * 4, own !== null);
    if (normMatvecFits(ctx, Di, xProjFormat, 1, true)) {
      run(normMatvec(ctx, { inFeatures: Di, outFeatures: R + 2 * N, norm: 'none', weightFormat: xProjFormat }, { x: a.xz, weight: w.weight('x_proj.weight'), y: a.dbc }, `Mamba1.L${l}.x_proj`));
    } else {
      run(matmul(ctx, { tokens: 1, inFeatures: Di, outFeatures: R + 2 * N, weightFormat: xProjFormat }, { x: a.xz, weight: w.weight('x_proj.weight'), y: a.dbc }, `Mamba1.L${l}.x_proj`));
    }
    if (norm) run(norm);
    copy(a.dbc, 0, taps?.dbc?.[l], (R + 2 * N) * 4, own !== null && !norm);
    run(
      selectiveScan(
        ctx,
        { tokens: 1, dInner: Di, dState: N },
        {
          x: a.xz, // xc is the first Di of the fused in_proj's output
          dtProj: { weight: w.weight('dt_proj.weight'), rank: R, format: w.format('dt_proj.weight') },
          weights: this.scanWeights,
          bc: xProjBC(a.dbc, R, N),
          z: inProjZ(a.xz, Di),
          y: a.y,
          state: ssmState,
          ...(taps?.delta?.[l] ? { delta: a.delta } : summarySlot ? { stepSummary: summarySlot } : {}),
        },
        `Mamba1.L${l}.dt_proj_scan`,
      ),
    );
    copy(a.delta, 0, taps?.delta?.[l], Di * 4, own !== null);
    copy(a.y, 0, taps?.y?.[l], Di * 4, own !== null);
    this.encodeOutProj(m, a.y);
  }

  /** residual += out_proj(y): the decode step's last dispatch. */
  private encodeOutProj(m: DecodeLayerContext, y: GPUBuffer): void {
    const { dModel: D, dInner: Di } = this.b.config;
    const w = this.b.weights;
    const label = `Mamba1.L${m.layer}.out_proj_residual`;
    const outFormat = w.format('out_proj.weight');
    const outShape = { inFeatures: Di, outFeatures: D, accumulate: true, weightFormat: outFormat };
    const outBuffers = { x: y, weight: w.weight('out_proj.weight'), y: m.residual };
    if (normMatvecFits(this.b.ctx, Di, outFormat, 1, true)) m.run(normMatvec(this.b.ctx, { ...outShape, norm: 'none' }, outBuffers, label));
    else m.run(matmul(this.b.ctx, { ...outShape, tokens: 1 }, outBuffers, label));
  }

  /**
   * An untraced decode step with x_proj folded into in_proj (tuning.decodeXProj 'folded'): in_proj
   * writes x_proj's partial sums over each block's conv channels, the step adds them (and applies
   * Falcon-Mamba's norm), out_proj as usual. 3 dispatches. The partial sums' buffer is shared by
   * the layers (they run one after another), one per size.
   */
  private encodeFoldedDecode(m: DecodeLayerContext, inProj: NormMatvecShape, inProjBuffers: NormMatvecBuffers, summarySlot: ReturnType<typeof stepSummarySlot>): void {
    const { dInner: Di, dState: N, dtRank: R, mixerRmsEps } = this.b.config;
    const l = m.layer;
    const ctx = this.b.ctx;
    const w = this.b.weights;
    const outputs = R + 2 * N;
    const shape: NormMatvecShape = { ...inProj, xProj: { outputs, format: w.format('x_proj.weight') } };
    const { blocks: rows, elements } = xProjPartialLayout(ctx, shape);
    const partials = this.b.shared(`mamba1.xProjPartials.${elements}`, () => this.b.activation('xProjPartials', elements));
    m.run(normMatvec(ctx, shape, { ...inProjBuffers, xProjWeight: w.weight('x_proj.weight'), xProjPartials: partials }, `Mamba1.L${l}.norm_in_proj_conv_x_proj`));
    const [, ssmState] = m.state as [GPUBuffer, GPUBuffer];
    m.run(
      selectiveScan(
        ctx,
        { tokens: 1, dInner: Di, dState: N },
        {
          x: this.act.xz,
          dtProj: { weight: w.weight('dt_proj.weight'), rank: R, format: w.format('dt_proj.weight'), xProjPartials: { rows, ...(mixerRmsEps > 0 ? { normEps: mixerRmsEps } : {}) } },
          weights: this.scanWeights,
          bc: xProjBC(partials, R, N),
          z: inProjZ(this.act.xz, Di),
          y: this.act.y,
          state: ssmState,
          ...(summarySlot ? { stepSummary: summarySlot } : {}),
        },
        `Mamba1.L${l}.x_proj_dt_proj_scan`,
      ),
    );
    this.encodeOutProj(m, this.act.y);
  }

  /** One token's xz, dt_r|B|C, Δ and y for this layer alone (a traced fused decode). */
  private tapBuffers(): { xz: GPUBuffer; dbc: GPUBuffer; delta: GPUBuffer; y: GPUBuffer } {
    const { dInner: Di, dState: N, dtRank: R } = this.b.config;
    const name = (what: string) => `Mamba1.L${this.b.layer}.tapped.${what}`;
    const { device } = this.b.ctx;
    return { xz: storageBuffer(device, name('xz'), 2 * Di * 4), dbc: storageBuffer(device, name('dbc'), (R + 2 * N) * 4), delta: storageBuffer(device, name('delta'), Di * 4), y: storageBuffer(device, name('y'), Di * 4) };
  }

  encode(m: MixerContext): void {
    const { dModel: D, dInner: Di, dState: N, dtRank: R, dConv: K } = this.b.config;
    const { tokens: T, layer: l, run, copy, taps } = m;
    const a = this.act;
    const ctx = this.b.ctx;
    const w = this.b.weights;
    const scratch = a.scratch?.matmul;
    const [convState, ssmState] = m.state as [GPUBuffer, GPUBuffer];
    m.linear('in_proj.weight', { inFeatures: D, outFeatures: 2 * Di }, { x: m.input, bias: w.optional('in_proj.bias'), y: a.xz, scratch }, `Mamba1.L${l}.in_proj`);
    copy(a.xz, taps?.xz?.[l], 2 * Di * 4);
    run(
      causalConv1d(
        ctx,
        { tokens: T, channels: Di, kernelSize: K, xOffset: 0, xStride: 2 * Di },
        { x: a.xz, weight: w.weight('conv1d.weight'), bias: w.optional('conv1d.bias'), convState, output: a.xc },
        `Mamba1.L${l}.conv1d`,
      ),
    );
    copy(a.xc, taps?.x?.[l], Di * 4);
    m.linear('x_proj.weight', { inFeatures: Di, outFeatures: R + 2 * N }, { x: a.xc, y: a.dbc, scratch }, `Mamba1.L${l}.x_proj`);
    const norm = this.mixerNorm(T, `Mamba1.L${l}.dt_b_c_rms`);
    if (norm) run(norm);
    copy(a.dbc, taps?.dbc?.[l], (R + 2 * N) * 4);
    m.linear('dt_proj.weight', { inFeatures: R, outFeatures: Di, xStride: R + 2 * N }, { x: a.dbc, y: a.dtRaw, scratch }, `Mamba1.L${l}.dt_proj`);
    m.knockDt(a.dtRaw, Di, 0, Di);
    run(
      selectiveScan(
        ctx,
        { tokens: T, dInner: Di, dState: N },
        {
          x: a.xc,
          dtRaw: a.dtRaw,
          weights: this.scanWeights,
          bc: xProjBC(a.dbc, R, N),
          z: inProjZ(a.xz, Di),
          y: a.y,
          state: ssmState,
          ...(taps?.delta?.[l] ? { delta: a.delta } : {}),
          ...(a.scratch?.summary ? { summary: a.scratch.summary } : {}),
        },
        `Mamba1.L${l}.scan`,
      ),
    );
    copy(a.delta, taps?.delta?.[l], Di * 4);
    copy(a.y, taps?.y?.[l], Di * 4);
    m.linear('out_proj.weight', { inFeatures: Di, outFeatures: D }, { x: a.y, bias: w.optional('out_proj.bias'), y: m.output, scratch }, `Mamba1.L${l}.out_proj`);
  }

  /**
   * Falcon-Mamba's weightless RMS norm of dt_r, B and C, in place on x_proj's output (its T rows),
   * or null (Mamba-1). Run right after x_proj, so dt_proj, the scan and the trace's B/C taps all
   * see the normalized values.
   */
  private mixerNorm(tokens: number, label: string): Dispatch | null {
    const { dState: N, dtRank: R, mixerRmsEps: eps } = this.b.config;
    if (!(eps > 0)) return null;
    return segmentRmsNorm(this.b.ctx, { rows: tokens, rowStride: R + 2 * N, bounds: xProjSegments(R, N), eps }, { x: this.act.dbc }, label);
  }

  destroy(): void {
    this.convWeights?.destroy();
    this.scanWeights.destroy();
    for (const b of Object.values(this.tapped ?? {})) b.destroy();
  }
}
