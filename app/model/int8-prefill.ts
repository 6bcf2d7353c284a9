/**
 * The int8 prefill (issue 19 item 1), opt-in: a model built with `prefillMatmul: 'int8'` runs the
 * largest matrix products of its plain prefill chunks — every SSM mixer's projections
 * (INT8_PROJECTIONS: in_proj, out_proj, Mamba-1's x_proj and dt_proj) over at least
 * INT8_MIN_TOKENS tokens — as int8 products (app/kernels/int8-gemm.ts): on the
 * tensor cores where the GPU offers them to WebGPU (they take int8 only), else a portable kernel.
 *   - Each weight is quantized once, at load (prepareInt8Prefill) or first use, row by row from
 *     its storage format (one scale per output row, max|w| / 127); its codes stay on the GPU
 *     (≈ 1 byte per weight: memory.ts `int8PrefillBytes` plans them).
 *   - The activations are quantized per chunk, one scale per token row, into a scratch buffer the
 *     model shares between layers.
 *   - Both are first rotated alike by a block-diagonal Hadamard matrix (int8RotationBlock of the
 *     product's inputs: 256 at every real model's widths), which leaves the product unchanged and
 *     spreads each row's outliers over its block, as Quamba (Chiang et al., 2024) does for Mamba:
 *     a row's one scale then loses less. Measured on random checkpoints' float64 references
 *     (Mamba-1 and Mamba-2, 4 layers): logit error 1.5–1.7× smaller than without.
 *   - Traced, knocked-out, patched, stop-early and all-position-logits plans, decode and short
 *     chunks stay fp32 (Model.plan decides): the panels and analyses show the fp32 model.
 * The cost is precision: per-row int8 keeps ~2 significant digits of each product (a row's
 * outliers coarsen its step), so logits move by ~1 % (test/gpu/int8-prefill.test.ts measures it
 * against the same quantization on the CPU, and bench/RESULTS.md on the H200).
 */
import { describeAdapter } from '../gpu/adapter.js';
import { storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { Dispatch } from '../kernels/dispatch.js';
import { int8Gemm, int8RotationBlock, int8TensorCores, int8Words, quantizeRowsI8, roundUp } from '../kernels/int8-gemm.js';
import type { PrefillMatmul } from './int8-plan.js';
import type { GatedNormInput } from './mixer.js';
import type { ResidualNormInput } from '../kernels/residual-rmsnorm.js';
import type { WeightFormat } from '../kernels/weight-format.js';

/** What the int8 products run on here: 'tensor cores' or 'portable'. */
export function int8PrefillKernel(ctx: GpuContext): 'tensor cores' | 'portable' {
  return int8TensorCores(ctx) ? 'tensor cores' : 'portable';
}

/**
 * The prefill's products as asked, where this GPU can: int8 needs int8 tensor cores (the portable
 * int8 kernel is slower than the fp32 one), else fp32 with a warning saying why. Without a GPU
 * (not open yet): as asked.
 */
export function usablePrefillMatmul(ctx: GpuContext | null, asked: PrefillMatmul): { matmul: PrefillMatmul; warning: string | null } {
  if (asked !== 'int8' || !ctx || int8PrefillKernel(ctx) === 'tensor cores') return { matmul: asked, warning: null };
  return { matmul: 'fp32', warning: `int8 prefill needs int8 tensor cores through WebGPU (the subgroup-matrix feature); ${describeAdapter(ctx.adapter)} has none, so the prefill runs fp32` };
}

/** Dawn's toggle that makes it offer the subgroup-matrix feature (Node: findNodeGpu flags; Chromium and Electron: --enable-unsafe-webgpu). */
export const DAWN_UNSAFE_TOGGLE = 'allow_unsafe_apis';
export const DAWN_UNSAFE_FLAG = `enable-dawn-features=${DAWN_UNSAFE_TOGGLE}`;

interface Quantized {
  codes: GPUBuffer;
  scales: GPUBuffer;
}

/** One model's int8 products: its weights' codes (made on first use) and the activations' scratch. */
export class Int8Prefill {
  private readonly weights = new Map<GPUBuffer, Quantized>();
  private scratch: Quantized | null = null;

  /**
   * @param maxTokens rows of the activations' scratch (the model's chunk)
   * @param maxCols the widest input of an int8 product (max of d_model and d_inner)
   */
  constructor(
    private readonly ctx: GpuContext,
    private readonly name: string,
    private readonly maxTokens: number,
    private readonly maxCols: number,
    /** The int8 product's kernel (default: the tensor cores where offered; the bench checks one against the other). */
    private readonly variant?: 'tensor-cores' | 'portable',
  ) {}

  /** Bytes this holds on the GPU now. */
  get bytes(): number {
    let sum = 0;
    for (const q of [...this.weights.values(), ...(this.scratch ? [this.scratch] : [])]) sum += q.codes.size + q.scales.size;
    return sum;
  }

  /** Whether a norm before a product with `cols` inputs folds into its quantize (linear's `gated`, `residualNorm`): where the rows are rotated. */
  foldsNorm(cols: number): boolean {
    return int8RotationBlock(cols) > 0;
  }

  /** Whether a product with `cols` inputs fits the activations' scratch. */
  fits(cols: number): boolean {
    return cols <= this.maxCols;
  }

  /**
   * Quantizes these weights and makes the activations' scratch now (LanguageModel.prepareInt8Prefill:
   * at load, under the caller's out-of-memory scope) instead of at the first prefill.
   */
  prepare(weights: readonly { weight: GPUBuffer; format: WeightFormat; rows: number; cols: number; label: string }[]): void {
    for (const w of weights) this.quantizedWeight(w.weight, w.format, w.rows, w.cols, w.label);
    this.activations();
  }

  /** Weight `weight` ([rows, cols] in `format`) as codes and scales, quantized on first use (submitted now: it runs before any later submit). */
  private quantizedWeight(weight: GPUBuffer, format: WeightFormat, rows: number, cols: number, label: string): Quantized {
    let q = this.weights.get(weight);
    if (!q) {
      const { device } = this.ctx;
      q = { codes: storageBuffer(device, `${label}.int8.codes`, roundUp(rows) * int8Words(cols) * 4), scales: storageBuffer(device, `${label}.int8.scales`, roundUp(rows) * 4) };
      const op = quantizeRowsI8(this.ctx, { rows, cols, format, rotate: int8RotationBlock(cols) }, { x: weight, codes: q.codes, scales: q.scales }, `${label}.int8.quantizeWeight`);
      const encoder = device.createCommandEncoder({ label: `${label}.int8.quantizeWeight` });
      const pass = encoder.beginComputePass();
      op.encode(pass);
      pass.end();
      device.queue.submit([encoder.finish()]);
      op.destroy(); // its params buffer: destroy waits for the submitted work
      this.weights.set(weight, q);
    }
    return q;
  }

  private activations(): Quantized {
    this.scratch ??= {
      codes: storageBuffer(this.ctx.device, `${this.name}.int8.activationCodes`, roundUp(this.maxTokens) * int8Words(this.maxCols) * 4),
      scales: storageBuffer(this.ctx.device, `${this.name}.int8.activationScales`, roundUp(this.maxTokens) * 4),
    };
    return this.scratch;
  }

  /**
   * Y [T, O] (+)= X [T, I] · Wᵀ (+ bias) as two dispatches: X's rows quantized, then the int8
   * product (split over K where tuning.int8SplitGroups asks, its partials in `scratch`, the
   * model's shared split-K buffer, where it holds them). W [O, I] in `format`.
   */
  linear(
    shape: { tokens: number; inFeatures: number; outFeatures: number; accumulate?: boolean; xStride?: number; format: WeightFormat },
    buffers: {
      x: GPUBuffer;
      weight: GPUBuffer;
      bias?: GPUBuffer | null;
      y: GPUBuffer;
      scratch?: GPUBuffer | null;
      /** x is this one-group gated RMSNorm (MixerContext LinearBuffers.gatedNorm), folded into the quantize: x itself is not read. */
      gated?: GatedNormInput;
      /** x is the block's residual add and RMSNorm of these inputs, folded into the quantize (which updates the residual): x itself is not read or written. */
      residualNorm?: ResidualNormInput;
    },
    label: string,
  ): Dispatch[] {
    const { tokens: T, inFeatures: I, outFeatures: O } = shape;
    if (T > this.maxTokens || !this.fits(I)) throw new RangeError(`${label}: ${T} × ${I} is larger than the int8 activations' scratch (${this.maxTokens} × ${this.maxCols})`);
    const w = this.quantizedWeight(buffers.weight, shape.format, O, I, label);
    const a = this.activations();
    const { gated, residualNorm: norm } = buffers;
    const rotate = int8RotationBlock(I);
    if ((gated || norm) && !this.foldsNorm(I)) throw new RangeError(`${label}: a norm folds into the rotating quantize only, and ${I} columns have no rotation block`);
    if ((gated || norm) && (shape.xStride ?? I) !== I) throw new RangeError(`${label}: a folded norm's rows are whole (no stride), got a stride of ${shape.xStride} for ${I} columns`);
    if (norm && (norm.shape.rows !== T || norm.shape.cols !== I)) throw new RangeError(`${label}: the folded residual norm is ${norm.shape.rows} × ${norm.shape.cols}, the product's input ${T} × ${I}`);
    const out = { codes: a.codes, scales: a.scales };
    const quantize = gated
      ? quantizeRowsI8(this.ctx, { rows: T, cols: I, rotate, gated: { zOffset: gated.z.offset, zStride: gated.z.rowStride, eps: gated.eps } }, { x: gated.y, z: gated.z.buffer, g: gated.weight, ...out }, `${label}.int8.quantize`)
      : norm
        ? quantizeRowsI8(this.ctx, { rows: T, cols: I, rotate, residual: norm.shape }, { x: norm.buffers.hidden, residual: norm.buffers.residual, g: norm.buffers.weight, ...out }, `${label}.int8.quantize`)
        : quantizeRowsI8(this.ctx, { rows: T, cols: I, rotate, xStride: shape.xStride ?? I }, { x: buffers.x, ...out }, `${label}.int8.quantize`);
    return [
      quantize,
      int8Gemm(this.ctx, { m: T, n: O, k: I, accumulate: shape.accumulate ?? false }, { qa: a.codes, sa: a.scales, qw: w.codes, sw: w.scales, y: buffers.y, bias: buffers.bias ?? null }, { ...(this.variant ? { variant: this.variant } : {}), scratch: buffers.scratch ?? null }, `${label}.int8`),
    ];
  }

  destroy(): void {
    for (const q of [...this.weights.values(), ...(this.scratch ? [this.scratch] : [])]) {
      q.codes.destroy();
      q.scales.destroy();
    }
    this.weights.clear();
    this.scratch = null;
  }
}
