/**
 * Mamba-1 on the GPU: the forward pass as a sequence of bound dispatches (DESIGN.md, "The math").
 *
 * Per layer (T tokens, D = d_model, Di = d_inner, N = d_state, R = dt_rank):
 *   residual += hidden; normed = RMSNorm(residual)·w          residual-rmsnorm   [T, D]
 *   xz = in_proj(normed)                                      matmul             [T, 2Di]  (x | z)
 *   xc = silu(conv1d(x) + b)          (conv state carried)    causal-conv1d      [T, Di]
 *   dbc = x_proj(xc)                                          matmul             [T, R+2N] (dt_r | B | C)
 *   dtRaw = dt_proj.weight · dt_r     (bias added in the scan) matmul            [T, Di]
 *   y = scan(xc, Δ = softplus(dtRaw + dt_bias), A, B, C, D) · silu(z)   selective-scan  [T, Di]
 *   hidden = out_proj(y)                                      matmul             [T, D]
 * then normed = RMSNorm_f(residual + hidden), logits = lm_head(normed) (tied: the embedding).
 *
 * Activations are sized for a chunk of at most `maxTokens` tokens; longer prompts run in chunks
 * with the conv and SSM states carried between them, so memory does not grow with the prompt.
 */
import type { MambaConfig } from '../formats/config.js';
import type { ModelInspection } from '../formats/inspect.js';
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { causalConv1d } from '../kernels/causal-conv1d.js';
import type { Dispatch } from '../kernels/dispatch.js';
import { embedding } from '../kernels/embedding.js';
import { matmul } from '../kernels/matmul.js';
import { residualRmsNorm } from '../kernels/residual-rmsnorm.js';
import { inProjZ, packSelectiveScanWeights, selectiveScan, xProjBC, type SelectiveScanWeights } from '../kernels/selective-scan.js';
import type { LoadedWeights } from './loader.js';

/** The recurrent state of one sequence: per layer, fp32, on the GPU. */
export interface Mamba1State {
  conv: GPUBuffer[]; // [Di, K-1] each
  ssm: GPUBuffer[]; // [Di, N] each
}

/**
 * Optional per-layer taps, written into caller-owned buffers from row `row0` (see trace/). An
 * array may leave layers out (undefined): only the layers given are traced.
 */
export interface Mamba1Taps {
  /** Δ after softplus, [T, Di] per layer. */
  delta?: (GPUBuffer | undefined)[];
  /** x_proj output rows (dt_r | B | C), [T, R+2N] per layer. */
  dbc?: (GPUBuffer | undefined)[];
  /** Residual stream after each block, [T, D] per layer (HF hidden_states[i]). */
  hidden?: (GPUBuffer | undefined)[];
  /** Row (token index) in the tap buffers where this chunk's first token goes. */
  row0: number;
  /** Read at encode time instead of row0: lets a decode plan built once write each token's row. */
  rowOf?: () => number;
}

/** A step of the forward pass: a dispatch (grouped into compute passes) or a buffer copy. */
type Step =
  | { kind: 'dispatch'; dispatch: Dispatch }
  | { kind: 'copy'; from: GPUBuffer; fromOffset: number; to: GPUBuffer; toOffset: number | (() => number); bytes: number };

/** Encodes steps: consecutive dispatches share one compute pass; copies go between passes. */
export function encodeSteps(encoder: GPUCommandEncoder, label: string, steps: readonly Step[]): void {
  let pass: GPUComputePassEncoder | null = null;
  for (const step of steps) {
    if (step.kind === 'dispatch') {
      pass ??= encoder.beginComputePass({ label: `${label}.pass` });
      step.dispatch.encode(pass);
    } else {
      pass?.end();
      pass = null;
      const toOffset = typeof step.toOffset === 'function' ? step.toOffset() : step.toOffset;
      encoder.copyBufferToBuffer(step.from, step.fromOffset, step.to, toOffset, step.bytes);
    }
  }
  pass?.end();
}

/** One forward over T tokens, bound to its buffers: encode it as often as needed. */
export interface ForwardPlan {
  tokens: number;
  steps: Step[];
  destroy(): void;
}

export class Mamba1 {
  readonly config: MambaConfig;
  private readonly w: (name: string) => GPUBuffer;
  private readonly prefix: string;
  private readonly embeddingName: string;
  readonly lmHead: GPUBuffer;
  /** Per layer: A_log, D and dt_bias packed for the scan (made once at load). */
  private readonly scanWeights: SelectiveScanWeights[];
  /** Activation buffers for up to maxTokens tokens. */
  private readonly act: {
    ids: GPUBuffer;
    hidden: GPUBuffer;
    residual: GPUBuffer;
    normed: GPUBuffer;
    xz: GPUBuffer;
    xc: GPUBuffer;
    dbc: GPUBuffer;
    dtRaw: GPUBuffer;
    y: GPUBuffer;
    delta: GPUBuffer;
  };

  constructor(
    private readonly ctx: GpuContext,
    inspection: ModelInspection,
    private readonly weights: LoadedWeights,
    readonly maxTokens = 256,
  ) {
    if (inspection.architecture !== 'mamba') throw new Error(`Mamba1 cannot run a ${inspection.architecture} model`);
    this.config = inspection.config;
    this.embeddingName = inspection.embeddingName;
    this.prefix = inspection.embeddingName.replace(/embeddings?\.weight$/, '');
    this.w = (name) => {
      const buffer = weights.buffers.get(name);
      if (!buffer) throw new Error(`Mamba1: weight ${name} is not loaded`);
      return buffer;
    };
    this.lmHead = weights.buffers.get('lm_head.weight') ?? this.w(inspection.embeddingName);
    const { dModel: D, dInner: Di, dState: N, dtRank: R } = this.config;
    this.scanWeights = Array.from({ length: this.config.nLayer }, (_, l) => {
      const m = `${this.prefix}layers.${l}.mixer.`;
      return packSelectiveScanWeights(
        ctx,
        { aLog: this.w(`${m}A_log`), d: this.w(`${m}D`), dtBias: this.w(`${m}dt_proj.bias`) },
        { dInner: Di, dState: N },
        `Mamba1.L${l}.scanWeights`,
      );
    });
    const T = maxTokens;
    const f = (label: string, elements: number) => storageBuffer(ctx.device, `Mamba1.${label}`, elements * 4);
    this.act = {
      ids: storageBuffer(ctx.device, 'Mamba1.ids', T * 4),
      hidden: f('hidden', T * D),
      residual: f('residual', T * D),
      normed: f('normed', T * D),
      xz: f('xz', T * 2 * Di),
      xc: f('xc', T * Di),
      dbc: f('dbc', T * (R + 2 * N)),
      dtRaw: f('dtRaw', T * Di),
      y: f('y', T * Di),
      delta: f('delta', T * Di),
    };
  }

  get idsBuffer(): GPUBuffer {
    return this.act.ids;
  }

  newState(): Mamba1State {
    const { dInner: Di, dState: N, dConv: K, nLayer: L } = this.config;
    const conv = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba1.state.conv.${l}`, Di * (K - 1) * 4));
    const ssm = Array.from({ length: L }, (_, l) => storageBuffer(this.ctx.device, `Mamba1.state.ssm.${l}`, Di * N * 4));
    return { conv, ssm }; // createBuffer zero-initializes: a fresh sequence
  }

  /** GPU memory of the activations (weights and state aside). */
  get activationBytes(): number {
    return Object.values(this.act).reduce((s, b) => s + b.size, 0);
  }

  /**
   * Binds one forward over `tokens` tokens (ids already written to idsBuffer) to `state`.
   * `logits` gets the last position's row ([V]); with `allLogits`, every position's row goes to
   * `allLogits.buffer` ([*, V]) from row `allLogits.row0` instead.
   */
  plan(
    tokens: number,
    state: Mamba1State,
    logits: GPUBuffer,
    options: { allLogits?: { buffer: GPUBuffer; row0: number }; taps?: Mamba1Taps } = {},
  ): ForwardPlan {
    const { dModel: D, dInner: Di, dState: N, dtRank: R, dConv: K, vocabSize: V, nLayer: L, normEps: eps } = this.config;
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new RangeError(`Mamba1: a chunk holds 1..${this.maxTokens} tokens, got ${tokens}`);
    }
    const T = tokens;
    const a = this.act;
    const ctx = this.ctx;
    const p = this.prefix;
    const dispatches: Dispatch[] = [];
    const steps: Step[] = [];
    const run = (d: Dispatch) => {
      dispatches.push(d);
      steps.push({ kind: 'dispatch', dispatch: d });
    };
    const taps = options.taps;
    const copy = (from: GPUBuffer, to: GPUBuffer | undefined, rowBytes: number) => {
      if (!to || !taps) return;
      const rowOf = taps.rowOf;
      const toOffset = rowOf ? () => rowOf() * rowBytes : taps.row0 * rowBytes;
      steps.push({ kind: 'copy', from, fromOffset: 0, to, toOffset, bytes: T * rowBytes });
    };
    const bias = (name: string) => this.weights.buffers.get(name) ?? null;

    run(embedding(ctx, { tokens: T, vocab: V, dim: D }, { ids: a.ids, table: this.w(this.embeddingName), output: a.hidden }, 'Mamba1.embedding'));
    for (let l = 0; l < L; l++) {
      const layer = `${p}layers.${l}.`;
      const m = `${layer}mixer.`;
      run(residualRmsNorm(ctx, { rows: T, cols: D, eps, hasResidual: l > 0 }, { hidden: a.hidden, residual: a.residual, weight: this.w(`${layer}norm.weight`), output: a.normed }, `Mamba1.L${l}.norm`));
      if (l > 0) copy(a.residual, taps?.hidden?.[l - 1], D * 4);
      run(matmul(ctx, { tokens: T, inFeatures: D, outFeatures: 2 * Di }, { x: a.normed, weight: this.w(`${m}in_proj.weight`), bias: bias(`${m}in_proj.bias`), y: a.xz }, `Mamba1.L${l}.in_proj`));
      run(
        causalConv1d(
          ctx,
          { tokens: T, channels: Di, kernelSize: K, xOffset: 0, xStride: 2 * Di },
          { x: a.xz, weight: this.w(`${m}conv1d.weight`), bias: bias(`${m}conv1d.bias`), convState: state.conv[l] as GPUBuffer, output: a.xc },
          `Mamba1.L${l}.conv1d`,
        ),
      );
      run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: R + 2 * N }, { x: a.xc, weight: this.w(`${m}x_proj.weight`), y: a.dbc }, `Mamba1.L${l}.x_proj`));
      copy(a.dbc, taps?.dbc?.[l], (R + 2 * N) * 4);
      run(matmul(ctx, { tokens: T, inFeatures: R, outFeatures: Di, xOffset: 0, xStride: R + 2 * N }, { x: a.dbc, weight: this.w(`${m}dt_proj.weight`), y: a.dtRaw }, `Mamba1.L${l}.dt_proj`));
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
            state: state.ssm[l] as GPUBuffer,
            ...(taps?.delta?.[l] ? { delta: a.delta } : {}),
          },
          `Mamba1.L${l}.scan`,
        ),
      );
      copy(a.delta, taps?.delta?.[l], Di * 4);
      run(matmul(ctx, { tokens: T, inFeatures: Di, outFeatures: D }, { x: a.y, weight: this.w(`${m}out_proj.weight`), bias: bias(`${m}out_proj.bias`), y: a.hidden }, `Mamba1.L${l}.out_proj`));
    }
    run(residualRmsNorm(ctx, { rows: T, cols: D, eps, hasResidual: true }, { hidden: a.hidden, residual: a.residual, weight: this.w(`${p}norm_f.weight`), output: a.normed }, 'Mamba1.norm_f'));
    copy(a.residual, taps?.hidden?.[L - 1], D * 4);
    const all = options.allLogits;
    run(
      all
        ? matmul(ctx, { tokens: T, inFeatures: D, outFeatures: V, yOffset: all.row0 * V, yStride: V }, { x: a.normed, weight: this.lmHead, y: all.buffer }, 'Mamba1.lm_head')
        : matmul(ctx, { tokens: 1, inFeatures: D, outFeatures: V, xOffset: (T - 1) * D, xStride: D }, { x: a.normed, weight: this.lmHead, y: logits }, 'Mamba1.lm_head'),
    );
    return { tokens: T, steps, destroy: () => dispatches.forEach((d) => d.destroy()) };
  }

  /** The normed final hidden state buffer ([T, D], HF hidden_states[L]) of the last forward. */
  get normedBuffer(): GPUBuffer {
    return this.act.normed;
  }

  destroy(): void {
    for (const b of Object.values(this.act)) b.destroy();
    for (const w of this.scanWeights) w.destroy();
  }
}
