/**
 * How much GPU memory a model needs, from its inspection alone (before anything is allocated):
 * the weights as stored on the GPU (exact: the loader makes one buffer per tensor of this size),
 * the activations for a prefill chunk of `maxTokens` tokens, and one session (its state and its
 * logits). The activations and the state are upper bounds for the mixers the studio has (Mamba-1
 * and Mamba-2, whose sizes the formulas below take the larger of, field by field);
 * test/gpu/memory-check.test.ts checks them against what built models allocate. A later memory
 * plan will ask each architecture for its own numbers.
 *
 * WebGPU tells nobody how much memory a device has: `checkGpuMemory` compares the total with a
 * budget the caller gives (none: no cap), and every tensor with the largest buffer the device binds.
 */
import { formatBytes, GpuError } from '../gpu/errors.js';
import { weightBytes, type WeightFormat } from '../kernels/f16.js';
import { MATMUL_SCRATCH_ELEMENTS } from '../kernels/matmul.js';
import { selectiveScanSummaryElements } from '../kernels/selective-scan.js';
import { ssdScratchElements } from '../kernels/ssd.js';
import type { ModelInspection } from './inspection.js';

export interface GpuMemoryNeed {
  /** The weights as stored on the GPU (fp32, or packed halves for the big matrices with 'f16'). */
  weights: number;
  /** Activations for a chunk of `maxTokens` tokens, scratch, the prefill's own state and logits, the per-layer packed scan weights. */
  activations: number;
  /** One session: its recurrent state and its logits. */
  session: number;
  total: number;
  maxTokens: number;
}

/** Whether `weightFormat: 'f16'` stores tensor `name` as packed halves (2-D projection matrices and the embedding). */
export function storedAsF16(name: string, shape: readonly number[], embeddingName: string): boolean {
  if (shape.length !== 2) return false;
  return name === embeddingName || name === 'lm_head.weight' || /(^|\.)(in_proj|x_proj|dt_proj|out_proj)\.weight$/.test(name);
}

/** What a user picks for the weights on the GPU: the checkpoint's own precision ('auto'), or one format. */
export type WeightChoice = 'auto' | WeightFormat;
export const WEIGHT_CHOICES: readonly WeightChoice[] = ['auto', 'f32', 'f16'];

/**
 * The weight format a choice means for this model. 'auto' keeps the checkpoint's precision as far
 * as the GPU kernels can: packed halves ('f16') when every tensor that f16 storage would hold as
 * halves is F16 in the file (an F16 safetensors or GGUF checkpoint: nothing is lost, and the
 * matrices take half the memory of fp32); fp32 otherwise — F32 files, and BF16 and Q8_0 files,
 * which no kernel reads in their own format yet (BF16 → f16 could overflow: it is widened to fp32).
 */
export function resolveWeightFormat(choice: WeightChoice, inspection: Pick<ModelInspection, 'tensors' | 'embeddingName'>): WeightFormat {
  if (choice !== 'auto') return choice;
  let halves = 0;
  for (const t of inspection.tensors.values()) {
    if (!storedAsF16(t.name, t.shape, inspection.embeddingName)) continue;
    if (t.dtype !== 'F16') return 'f32';
    halves++;
  }
  return halves > 0 ? 'f16' : 'f32';
}

/** The bytes of tensor `name`'s GPU buffer. */
export function weightBufferBytes(name: string, shape: readonly number[], embeddingName: string, weightFormat: WeightFormat = 'f32'): number {
  const count = shape.reduce((a, b) => a * b, 1);
  return weightBytes(count, weightFormat === 'f16' && storedAsF16(name, shape, embeddingName) ? 'f16' : 'f32');
}

export function gpuMemoryNeed(inspection: ModelInspection, options: { maxTokens?: number; weightFormat?: WeightFormat } = {}): GpuMemoryNeed {
  const T = options.maxTokens ?? 256;
  const c = inspection.config;
  const { dModel: D, dInner: Di, dState: N, dConv: K, dtRank: R, nHeads: H, nGroups: G, vocabSize: V, nLayer: L } = c;
  let weights = 0;
  for (const t of inspection.tensors.values()) weights += weightBufferBytes(t.name, t.shape, inspection.embeddingName, options.weightFormat);
  // Per layer: Mamba-1's conv history (K−1)·Di and state Di·N; Mamba-2's conv history covers B and C too.
  const state = 4 * L * (Di * (K - 1 + N) + 2 * G * N * (K - 1));
  // Per token: the model's ids, hidden, residual, normed; the mixer's (shared by every layer):
  // Mamba-1 xz 2Di, xc, dtRaw, y, Δ Di each, dbc R+2N; Mamba-2 zxbcdt 2Di+2GN+H, xc Di+2GN, y, gated Di each, Δ H.
  const perToken = 1 + 3 * D + 6 * Di + R + 2 * N + 4 * G * N + 2 * H;
  const chunk = Math.min(Math.max(c.chunkSize, 1), 1024);
  const ssd = ssdScratchElements({ tokens: T, nHeads: H, headDim: c.headDim, nGroups: G, dState: N }, chunk);
  const scratch = T > 1 ? MATMUL_SCRATCH_ELEMENTS + selectiveScanSummaryElements(T, Di, N) + ssd.cums + ssd.chunkState + ssd.cb : 0;
  // Per layer, the scan's packed weights: Mamba-1 A_log, D and dt_bias (Di·(N+2)); Mamba-2 (which has heads) A, D, dt_bias per head.
  const packed = 4 * L * (H > 0 ? 3 * H : Di * (N + 2));
  const activations = 4 * (T * perToken + scratch + V) + state + packed;
  const session = state + 4 * V;
  return { weights, activations, session, total: weights + activations + session, maxTokens: T };
}

/**
 * Throws a GpuError('out-of-memory') when a tensor is larger than the device binds in one buffer,
 * or the whole model (`need`) more than `budget` bytes. `file`: the model, for the message.
 */
export function checkGpuMemory(
  inspection: ModelInspection,
  need: GpuMemoryNeed,
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number },
  budget?: number,
): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  for (const t of inspection.tensors.values()) {
    // As fp32 whatever the format: what the kernels read a tensor as when it is not packed.
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
    if (bytes > limit) {
      throw new GpuError(`${t.file}: tensor "${t.name}" needs ${formatBytes(bytes)} as fp32, more than this GPU can bind in one buffer (${formatBytes(limit)})`, 'out-of-memory');
    }
  }
  if (budget !== undefined && need.total > budget) {
    throw new GpuError(
      `the model needs about ${formatBytes(need.total)} of GPU memory (weights ${formatBytes(need.weights)}, activations for ${need.maxTokens} tokens ${formatBytes(need.activations)}, ` +
        `one sequence ${formatBytes(need.session)}), more than the budget of ${formatBytes(budget)} (gpuMemoryBudget)`,
      'out-of-memory',
    );
  }
}
