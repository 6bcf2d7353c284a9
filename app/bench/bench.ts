/**
 * The benchmark harness (Node + Dawn): prefill tokens/s at several lengths, decode tokens/s,
 * GPU memory, a per-kernel breakdown from timestamp queries, and the ceilings it measures itself
 * (copy bandwidth, a large GEMM). Medians of repeated runs after warm-up. Prints a table and
 * writes JSON. Speed targets are judged from its output, never by tests.
 */
import type { TraceBenchResult } from './trace-bench.js';
import { buildModel } from '../arch/build.js';
import { architectureSpec, canonicalConfig, type ArchitectureName } from '../arch/registry.js';
import { expectedTensors } from '../arch/tensors.js';
import type { MambaConfig } from '../model/config.js';
import type { ModelInspection } from '../model/inspection.js';
import { describeAdapter, type AdapterSummary } from '../gpu/adapter.js';
import { gridDecodeWorkgroups, type GpuContext, type KernelTuning } from '../gpu/context.js';
import { randomFill, tensorSeed, type FillFormat } from '../kernels/random-fill.js';
import { isBlockFormat, quantTypeOf, rowQuantum, WEIGHT_FORMATS, weightBytes, weightDataBytes, type WeightFormat } from '../kernels/weight-format.js';
import type { TensorLocation } from '../formats/tensor-location.js';
import { matmul } from '../kernels/matmul.js';
import { kernelUnits } from '../kernels/dispatch.js';
import { generate, type GenerateOptions } from '../model/generate.js';
import { DEFAULT_SAMPLING } from '../model/sampling.js';
import type { PrefillMatmul } from '../model/int8-plan.js';
import { int8PrefillKernel } from '../model/int8-prefill.js';
import { relativeError } from '../kernels/self-test.js';
import { seededRandom } from '../random.js';
import type { LoadedWeights } from '../model/loader.js';
import { describeWeightFormats, storedAsF16, weightFormats, weightParts, type WeightChoice, type WeightPart } from '../model/memory.js';
import { checkMemoryPlan, modelChunks, planMemory, type MemoryPlan } from '../model/memory-plan.js';
import { stateBuffers } from '../model/mixer.js';
import { stampPass, type LanguageModel } from '../model/model.js';
import { Session } from '../model/session.js';
import { timeStepCpu } from './step-cpu.js';
import { readTimestamps, timeStepGpu } from './step-gpu.js';
import { median } from './median.js';
import { samplerGpuMs, type SamplerGpuMs } from './sampler-gpu.js';

/**
 * Model shapes the harness can make with random weights (transformers config keys). The large ones
 * are the public checkpoints' configs:
 * - mamba-2.8b: state-spaces/mamba-2.8b-hf (and ArthurZ/mamba-2.8b) config.json — hidden_size 2560,
 *   64 layers, vocab_size 50280, state_size 16, expand 2 (intermediate_size 5120), time_step_rank 160,
 *   conv_kernel 4, use_bias false, use_conv_bias true, tied embeddings.
 * - mamba2-2.7b: state-spaces/mamba2-2.7b config.json (mamba_ssm) — d_model 2560, n_layer 64,
 *   vocab_size 50277 padded to a multiple of pad_vocab_size_multiple 16 = 50288, tie_embeddings true,
 *   ssm_cfg {layer: Mamba2} with mamba_ssm's Mamba2 defaults d_state 128, headdim 64 (80 heads of
 *   d_inner 5120), ngroups 1, chunk_size 256, expand 2, d_conv 4.
 * - falcon-mamba-7b: tiiuae/falcon-mamba-7b config.json — hidden_size 4096, 64 layers,
 *   vocab_size 65024, state_size 16, intermediate_size 8192 (its "expand": 16 loses to it, as in
 *   transformers), time_step_rank 256, conv_kernel 4, tie_word_embeddings false (an lm_head of its
 *   own), use_bias false, use_conv_bias true, mixer_rms_eps 1e-6 (transformers' default; the config
 *   leaves it out).
 * (transformers' Mamba2Config unties the LM head by default: the Mamba-2 shapes say
 * tie_word_embeddings true, as mamba_ssm's tie_embeddings does.)
 * 'tiny-k' is a tiny Mamba whose rows are whole 256-element super-blocks, so the K-quants apply to
 * every big matrix but dt_proj (tiny's 64-wide rows fall back to fp32 for them).
 */
export const SHAPES: Record<string, Record<string, unknown>> = {
  tiny: { model_type: 'mamba', hidden_size: 64, num_hidden_layers: 2, vocab_size: 256, state_size: 16 },
  'tiny-k': { model_type: 'mamba', hidden_size: 256, num_hidden_layers: 2, vocab_size: 256, state_size: 16, time_step_rank: 16 },
  // mamba-2.8b's depth at a tiny width: the per-step CPU cost of 64 layers' dispatches, with little GPU work.
  'deep-tiny': { model_type: 'mamba', hidden_size: 64, num_hidden_layers: 64, vocab_size: 256, state_size: 16 },
  'mamba-130m': { model_type: 'mamba', hidden_size: 768, num_hidden_layers: 24, vocab_size: 50280, state_size: 16 },
  'mamba-370m': { model_type: 'mamba', hidden_size: 1024, num_hidden_layers: 48, vocab_size: 50280, state_size: 16 },
  'mamba-2.8b': {
    model_type: 'mamba', hidden_size: 2560, num_hidden_layers: 64, vocab_size: 50280, state_size: 16, expand: 2, intermediate_size: 5120, time_step_rank: 160, conv_kernel: 4,
  },
  'mamba2-tiny': { model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 2, vocab_size: 256, state_size: 16, num_heads: 8, head_dim: 16, n_groups: 1, chunk_size: 32, tie_word_embeddings: true },
  'mamba2-130m': {
    model_type: 'mamba2', hidden_size: 768, num_hidden_layers: 24, vocab_size: 50288, state_size: 128, num_heads: 24, head_dim: 64, n_groups: 1, chunk_size: 256, tie_word_embeddings: true,
  },
  'mamba2-2.7b': {
    model_type: 'mamba2', hidden_size: 2560, num_hidden_layers: 64, vocab_size: 50288, state_size: 128, expand: 2, num_heads: 80, head_dim: 64, n_groups: 1, chunk_size: 256, conv_kernel: 4, tie_word_embeddings: true,
  },
  'falcon-mamba-7b': {
    model_type: 'falcon_mamba', hidden_size: 4096, num_hidden_layers: 64, vocab_size: 65024, state_size: 16, intermediate_size: 8192, time_step_rank: 256, conv_kernel: 4,
    tie_word_embeddings: false, mixer_rms_eps: 1e-6, use_bias: false, use_conv_bias: true,
  },
};

export interface BenchOptions {
  prefillTokens: number[];
  decodeTokens: number;
  repeats: number;
  warmup: number;
  /**
   * Tokens per prefill chunk (the model's maxTokens); absent: the app's choice for this model on
   * this adapter (memory-plan.ts modelChunks), at most the longest prefill measured.
   */
  chunk?: number;
  ceilings: boolean;
  breakdown: boolean;
  /** What the weights were asked to be (the result's dtype); absent: read from the loaded formats. */
  weights?: BenchWeights | WeightChoice;
  /** The weight choice the memory plan is made for: 'f32' for fp32 weights, else 'auto' (random weights' own formats) or the loader's. */
  weightChoice?: WeightChoice;
  /** Keep the built model (BenchResult.model_ref) for more measurements; the caller destroys it. */
  keepModel?: boolean;
  /** How the prefill multiplies (default 'fp32'; 'int8': app/model/int8-prefill.ts, then also its accuracy against fp32). */
  prefillMatmul?: PrefillMatmul;
}

/** BenchOptions with the chunk resolved (runBench). */
type ChunkedBenchOptions = BenchOptions & { chunk: number };

/** The int8 prefill's numbers (BenchResult.int8_prefill). */
export interface Int8PrefillBench {
  /** What the products ran on. */
  kernel: 'tensor cores' | 'portable';
  /** Quantizing every projection's weights at load (prepareInt8Prefill, GPU done), ms. */
  quantize_ms: number;
  /** GPU bytes of the codes and scratch. */
  bytes: number;
  /**
   * The last position's logits of `prompts` random prompts of `tokens` tokens, int8 against the
   * fp32 prefill of the same weights: relative L2 error (median, max) and how often the top-1 id agrees.
   */
  accuracy: { tokens: number; prompts: number; logit_rel_err_median: number; logit_rel_err_max: number; top1_agree: number };
  /**
   * With the tensor cores: the same prompts through the portable int8 kernel (the same codes, so
   * the same sums): its logits' relative error against fp32 (median), and the largest relative
   * difference between the two int8 runs (float sums in another order: ~1e-6 unless a kernel is wrong).
   */
  portable_check?: { logit_rel_err_median: number; tensor_cores_vs_portable_max: number };
}

export interface PrefillSplit {
  call_ms: number;
  plan_encode_submit_ms: number;
  again_ms: number;
}

/** How far a prefill's first call of a session and the same call again may differ before the bench flags the run (PREFILL_SPLIT_SPREAD). */
export const PREFILL_SPLIT_SPREAD = 0.15;

/**
 * A note where the first prefill of a session (the rate's median) and the same prefill again at
 * once differ by more than PREFILL_SPLIT_SPREAD of the faster: such a run's rate is not one to
 * decide on (the fourteenth session turned down Mamba-1's channel scan on a run whose first calls
 * took 119.6 ms and whose second 89.9; with four repeats it was 1.20× faster). Null where they agree.
 */
export function prefillSplitNote(tokens: number, split: PrefillSplit, repeats: number): string | null {
  const fast = Math.min(split.call_ms, split.again_ms);
  const spread = Math.abs(split.call_ms - split.again_ms) / fast;
  if (!(fast > 0) || spread <= PREFILL_SPLIT_SPREAD) return null;
  return `prefill ${tokens}: the first call of a session (${split.call_ms.toFixed(1)} ms, median of ${repeats}) and the same call again (${split.again_ms.toFixed(1)} ms) differ by ${(spread * 100).toFixed(0)} %: a noisy run, repeat it with more --repeats before comparing`;
}

export interface BenchResult {
  date: string;
  adapter: string;
  adapterInfo: AdapterSummary;
  arch: ArchitectureName;
  model: string;
  d_model: number;
  n_layer: number;
  d_state: number;
  vocab: number;
  parameters: number;
  /** The storage asked for (`--weights`): a format of app/kernels/weight-format.ts, 'q4_k_m', or a loader choice (arithmetic is fp32 either way). */
  dtype: BenchWeights | WeightChoice;
  /** The GPU formats the big matrices got, largest first ("q4_k + fp32": dt_proj, or rows that are not whole blocks, stay fp32). */
  weight_formats: string;
  prefill_tok_s: Record<string, number>;
  /** Where a prefill call's time goes (medians, ms): the whole call, its CPU part up to submit, and the same call again at once in the same session. */
  prefill_split?: Record<string, PrefillSplit>;
  decode_tok_s: number;
  /**
   * CPU ms a greedy decode step takes to encode and submit (app/bench/step-cpu.ts), median of the
   * runs: where it approaches 1000 / decode_tok_s, the decode is bound by the CPU, not the GPU.
   */
  decode_step_cpu_ms: number;
  /**
   * GPU ms of a greedy decode step: timestamps once the work before it is done and once it is done
   * (app/bench/step-gpu.ts), median over one generation of decode tokens; absent without
   * timestamp-query. 1000 / decode_tok_s well above it: the decode waits on the CPU or the queue.
   */
  decode_step_gpu_ms?: number;
  /** Decode with the app's default sampling (app/model/sampling.ts DEFAULT_SAMPLING) instead of greedy. */
  decode_sampled_tok_s: number;
  /**
   * GPU ms of one sampling over the vocabulary (app/bench/sampler-gpu.ts), with the app's default
   * sampling and greedy, each with the sampler's first stage (candidates) and with the whole
   * vocabulary searched in one workgroup; absent without timestamp-query.
   */
  sampler_gpu_ms?: { default_sampling: SamplerGpuMs; greedy: SamplerGpuMs };
  /** The grid decode (one dispatch a layer), where it ran: checkGridDecode. */
  grid_decode?: { workgroups: number; aborted: boolean; tokens: number; tokens_equal: number };
  /** The CLI's --grid setting this result ran with, and the grid workgroups the adapter probe gave (GpuContext.gridWorkgroups). */
  grid_setting?: number | string;
  grid_workgroups_found?: number | null;
  /** bench --scan-chunk: the Mamba-1 prefill scan's chunk length forced for this run. */
  scan_chunk?: number;
  /** bench --scan-lanes: the Mamba-1 parallel prefill scan's lanes a channel forced for this run. */
  scan_lanes?: number;
  /** bench --dawn-features: the Dawn toggles enabled for the run (absent: none beyond the defaults). */
  dawn_features?: string[];
  /** bench --prefill-scan: Mamba-1's prefill scan kernel forced for this run. */
  prefill_scan?: string;
  /** bench --ssd-chunk: the Mamba-2 SSD prefill's chunk length forced for this run. */
  ssd_chunk?: number;
  /** bench --ssd-tile: Mamba-2's SSD chunk-kernel tiles forced for this run. */
  ssd_tile?: string;
  /** bench --split-groups: the prefill matmul's split-K target forced for this run. */
  split_groups?: number;
  /** bench --int8-split-groups: the int8 tensor-core products' split-K target forced for this run. */
  int8_split_groups?: number;
  /** bench --decode-xproj: where Mamba-1's decode computed x_proj in this run (separate, folded into in_proj). */
  decode_xproj?: string;
  /** With x_proj folded: checkFoldedDecode's greedy tokens against the separate x_proj's. */
  decode_xproj_check?: { tokens: number; tokens_equal: number };
  /** bench --tc-kernel: the int8 products' tensor-core kernel forced for this run. */
  tc_kernel?: string;
  /** bench --conv: the causal conv's kernel (kernel size 4) forced for this run. */
  conv_kernel?: string;
  /** The subgroup size the matrix-vector sums used (null: the barrier tree). */
  subgroup_size?: number | null;
  /** The decode matrix-vector kernel's shape forced by --matvec (threads×rows×unroll); absent: the op's own choice. */
  matvec?: string;
  /** What the built model allocated: the weight buffers, the activations for a prefill chunk, one session's state. */
  gpu_memory_bytes: { weights: number; activations: number; state: number };
  /**
   * The memory plan made from the inspection before anything was allocated (for the prefill chunk
   * of this run, no trace, this adapter's limits), and the function that made it.
   */
  memory_plan: MemoryPlan & { source: string };
  ceilings?: { copy_gb_s: number; gemm_tflop_s: number };
  /** The matmul kernels on the model's prefill shapes (and 2048³), forced variants: TFLOP/s. */
  gemm?: { tokens: number; in: number; out: number; variant: string; splits: number; tflop_s: number }[];
  achieved?: { decode_bandwidth_fraction?: number; prefill_flop_fraction?: Record<string, number> };
  kernels?: { name: string; microseconds: number; count: number }[];
  repeats: number;
  notes: string[];
  /** With `bench --trace N`: the long-trace measurements (app/bench/trace-bench.ts). */
  trace?: TraceBenchResult;
  /** With keepModel: the built model (not written to the JSON). */
  model_ref?: LanguageModel;
  /** How the prefill multiplied ('fp32' unless --prefill-matmul int8 took). */
  prefill_matmul?: PrefillMatmul;
  int8_prefill?: Int8PrefillBench;
}

/** What `bench --weights` takes for random weights: a storage format, or 'q4_k_m' (Q4_K with the embedding and LM head in Q6_K). */
export type BenchWeights = WeightFormat | 'q4_k_m';
export const BENCH_WEIGHTS: readonly BenchWeights[] = [...WEIGHT_FORMATS, 'q4_k_m'];

const BENCH_FILE = 'random weights';

/**
 * The dtype a checkpoint stored in `weights` would give tensor `name`, as a tensor location, so
 * that app/model/memory.ts tensorWeightFormat decides its GPU format exactly as for a file. Float
 * formats: a transformers checkpoint in that dtype — the big matrices (in_proj, x_proj, dt_proj,
 * out_proj, embedding, LM head) in it, the vectors F32. Block formats: a GGUF as llama.cpp's
 * quantizer writes it (llama-quant.cpp: token_embd, output, ssm_in, ssm_out quantized; Mamba's small
 * 2-D ssm_x, ssm_dt and ssm_conv1d, and every vector, F32). tensorWeightFormat then keeps a row
 * that is not whole blocks in fp32.
 */
function benchTensor(name: string, shape: number[], weights: BenchWeights, embeddingName: string): TensorLocation {
  let own: WeightFormat = weights === 'q4_k_m' ? (name === embeddingName || name === 'lm_head.weight' ? 'q6_k' : 'q4_k') : weights;
  if (!storedAsF16(name, shape, embeddingName) || (isBlockFormat(own) && /(^|\.)(x_proj|dt_proj)\.weight$/.test(name))) own = 'f32';
  const elements = shape.reduce((x, y) => x * y, 1);
  const base = { name, shape, file: BENCH_FILE, offset: 0, byteLength: elements % rowQuantum(own) === 0 ? weightDataBytes(elements, own) : 0 };
  if (isBlockFormat(own)) return { ...base, encoding: 'gguf', dtype: quantTypeOf(own), ggufName: name, transform: 'none' };
  return { ...base, encoding: 'safetensors', dtype: own === 'f16' ? 'F16' : own === 'bf16' ? 'BF16' : 'F32' };
}

/**
 * The inspection of a random model of `config` stored in `weights` (no GPU): every tensor listed as
 * a checkpoint in that format would list it, so gpuMemoryNeed plans it before anything exists.
 */
export function randomInspection(config: MambaConfig, weights: BenchWeights = 'f32'): ModelInspection {
  const embeddingName = 'backbone.embeddings.weight';
  const specs = expectedTensors(config, embeddingName).filter((s) => !s.optional || (s.name === 'lm_head.weight' && !config.tieEmbeddings));
  const tensors = new Map<string, TensorLocation>();
  let parameters = 0;
  for (const spec of specs) {
    tensors.set(spec.name, benchTensor(spec.name, spec.shape, weights, embeddingName));
    parameters += spec.shape.reduce((a, b) => a * b, 1);
  }
  return {
    architecture: config.architecture,
    format: weights === 'f32' || weights === 'f16' || weights === 'bf16' ? 'safetensors' : 'gguf',
    config,
    parameters,
    tensors,
    tiedHead: config.tieEmbeddings,
    embeddingName,
    weightFiles: [],
    weightBytes: [...tensors.values()].reduce((a, t) => a + t.byteLength, 0),
    tokenizer: 'none',
    warnings: [],
  };
}

/**
 * Random weights with the shapes of `config`, made on the GPU (app/kernels/random-fill.ts: no
 * tensor passes through the JS heap), each tensor in the format a checkpoint stored in `weights`
 * would get on the GPU ('f32': fp32 everywhere; otherwise tensorWeightFormat's 'auto' rule). The
 * inspection lists the tensors as such a checkpoint's, so gpuMemoryNeed plans what is allocated.
 * Values: the matrices and vectors uniform in ±1/√(last dimension), norms 1, A_log log(1 + 15u).
 * A tensor larger than one binding is split into row ranges as the loader splits it (memory.ts
 * weightParts: the embedding and LM head); any other throws (GpuError 'out-of-memory', before allocating).
 */
export function randomWeights(
  ctx: GpuContext,
  config: MambaConfig,
  seed = 1,
  weights: BenchWeights = 'f32',
  /** The largest buffer to bind (default: the device's); tests split the embedding with it. */
  bindingLimit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize),
): { inspection: ModelInspection; weights: LoadedWeights } {
  const inspection = randomInspection(config, weights);
  const { embeddingName, tensors } = inspection;
  const choice: WeightChoice = weights === 'f32' ? 'f32' : 'auto';
  const formats = weightFormats(choice, inspection);
  // Only the per-binding check (a tensor that cannot be split is refused): the bench knows its device's memory.
  checkMemoryPlan(planMemory(inspection, { weights: choice, adapter: { vendor: '', architecture: '', device: '', description: '', limits: { maxStorageBufferBindingSize: bindingLimit, maxBufferSize: bindingLimit } }, model: 'random weights' }), 'weights');
  const buffers = new Map<string, GPUBuffer>();
  const parts = new Map<string, WeightPart[]>();
  const shapes = new Map<string, number[]>();
  let bytesOnGpu = 0;
  const destroy = () => {
    for (const b of buffers.values()) b.destroy();
    for (const list of parts.values()) for (const part of list) part.buffer.destroy();
  };
  try {
    for (const t of tensors.values()) {
      const format = formats.get(t.name) ?? 'f32';
      const n = t.shape.reduce((a, b) => a * b, 1);
      shapes.set(t.name, t.shape);
      const norm = t.name.endsWith('norm.weight') || t.name.endsWith('norm_f.weight');
      const fill: FillFormat = norm ? 'constant' : t.name.endsWith('A_log') ? 'a_log' : format;
      const scale = norm ? 1 : 1 / Math.sqrt(t.shape[t.shape.length - 1] ?? 1);
      // One buffer, or row ranges of one each when the embedding / LM head is larger than one binding (as the loader does).
      const ranges = weightParts(t.name, t.shape, format, bindingLimit, embeddingName) ?? [{ firstRow: 0, rows: t.shape[0] ?? 1 }];
      const made: WeightPart[] = [];
      for (const [p, range] of ranges.entries()) {
        const elements = ranges.length > 1 ? range.rows * (t.shape[1] as number) : n;
        const size = weightBytes(elements, format);
        const label = ranges.length > 1 ? `Bench.${t.name}#${p}` : `Bench.${t.name}`;
        const buffer = ctx.device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
        made.push({ buffer, firstRow: range.firstRow, rows: range.rows });
        if (ranges.length === 1) buffers.set(t.name, buffer);
        else parts.set(t.name, made);
        bytesOnGpu += size;
        randomFill(ctx, buffer, { format: fill, elements, scale, seed: tensorSeed(seed + range.firstRow, t.name) }, `Bench.fill.${label}`);
      }
    }
  } catch (error) {
    destroy();
    throw error;
  }
  return { inspection, weights: { buffers, ...(parts.size > 0 ? { parts } : {}), formats, shapes, bytesOnGpu, destroy } };
}

async function measureCeilings(ctx: GpuContext, repeats: number): Promise<{ copy_gb_s: number; gemm_tflop_s: number }> {
  const { device } = ctx;
  // Sizes that fill a real GPU; a software adapter gets small ones (its numbers are a smoke test).
  const software = ctx.adapter.software;
  const bytes = Math.min((software ? 16 : 256) * 2 ** 20, ctx.adapter.limits.maxBufferSize / 2);
  const a = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const b = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const copies = 8;
  const copyTimes: number[] = [];
  for (let r = 0; r < repeats + 1; r++) {
    const e = device.createCommandEncoder();
    for (let i = 0; i < copies; i++) e.copyBufferToBuffer(i % 2 ? b : a, 0, i % 2 ? a : b, 0, bytes);
    const t = performance.now();
    device.queue.submit([e.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (r > 0) copyTimes.push(performance.now() - t);
  }
  a.destroy();
  b.destroy();
  // Bytes read + written.
  const copy_gb_s = (2 * bytes * copies) / (median(copyTimes) / 1000) / 1e9;
  const n = software ? 256 : 2048;
  const mk = () => device.createBuffer({ size: n * n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const [x, w, y] = [mk(), mk(), mk()];
  const fill = new Float32Array(n * n).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  device.queue.writeBuffer(x, 0, fill);
  device.queue.writeBuffer(w, 0, fill);
  const d = matmul(ctx, { tokens: n, inFeatures: n, outFeatures: n }, { x, weight: w, y }, 'Bench.gemm');
  const gemmTimes: number[] = [];
  for (let r = 0; r < repeats + 1; r++) {
    const e = device.createCommandEncoder();
    const pass = e.beginComputePass();
    for (let i = 0; i < 4; i++) d.encode(pass);
    pass.end();
    const t = performance.now();
    device.queue.submit([e.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (r > 0) gemmTimes.push(performance.now() - t);
  }
  d.destroy();
  for (const buf of [x, w, y]) buf.destroy();
  return { copy_gb_s, gemm_tflop_s: (4 * 2 * n ** 3) / (median(gemmTimes) / 1000) / 1e12 };
}

/** TFLOP/s of one matmul shape with a forced variant (and split count), median of `repeats`. */
async function timeMatmul(ctx: GpuContext, T: number, I: number, O: number, variant: 'auto' | 'tiled' | 'tiled_wide', repeats: number, splits?: number) {
  const { device } = ctx;
  const mk = (n: number) => device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const [x, w, y] = [mk(T * I), mk(O * I), mk(T * O)];
  device.queue.writeBuffer(x, 0, new Float32Array(T * I).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5));
  device.queue.writeBuffer(w, 0, new Float32Array(O * I).map((_, i) => ((i * 40503) % 1000) / 1000 - 0.5));
  const d = matmul(ctx, { tokens: T, inFeatures: I, outFeatures: O, variant, ...(splits ? { splits } : {}) }, { x, weight: w, y }, 'Bench.gemmShape');
  const reps = 8;
  const times: number[] = [];
  for (let r = 0; r < repeats + 1; r++) {
    const e = device.createCommandEncoder();
    const pass = e.beginComputePass();
    for (let i = 0; i < reps; i++) d.encode(pass);
    pass.end();
    const t = performance.now();
    device.queue.submit([e.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (r > 0) times.push(performance.now() - t);
  }
  const result = { tokens: T, in: I, out: O, variant: d.entryPoint, splits: d.splits, tflop_s: (reps * 2 * T * I * O) / (median(times) / 1000) / 1e12 };
  d.destroy();
  for (const b of [x, w, y]) b.destroy();
  return result;
}

/**
 * Per-kernel time of one forward over `tokens` tokens, from timestamp queries (one pass per
 * dispatch; an op of several kernels, Dispatch.parts, one pass per kernel, named `op.kernel`).
 */
async function kernelBreakdown(ctx: GpuContext, model: LanguageModel, tokens: number): Promise<{ name: string; microseconds: number; count: number }[]> {
  const { device } = ctx;
  const state = model.newState();
  const logits = device.createBuffer({ size: model.config.vocabSize * 4, usage: GPUBufferUsage.STORAGE });
  const plan = model.plan(tokens, state, logits);
  const dispatches = plan.steps.flatMap((s) => (s.kind === 'dispatch' ? kernelUnits(s.dispatch) : []));
  // Query 0 at the end of an empty pass before the kernels, query i + 1 at the end of kernel i's
  // pass; kernel i's time is query i + 1 − query i. End-of-pass timestamps only: Dawn's Vulkan
  // backend writes a beginning-of-pass one at TOP_OF_PIPE, where it can latch while the kernel
  // before still runs (the figures before the eighteenth session took kernel i's from its own
  // beginning, which could count the tail of kernel i − 1 in it).
  const querySet = device.createQuerySet({ type: 'timestamp', count: dispatches.length + 1 });
  const totals = new Map<string, { ns: number; count: number }>();
  for (let rep = 0; rep < 2; rep++) {
    const e = device.createCommandEncoder();
    stampPass(e, 'kernelBreakdown.begin', querySet, 0);
    dispatches.forEach((d, i) => {
      const pass = e.beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: i + 1 } });
      d.encode(pass);
      pass.end();
    });
    device.queue.submit([e.finish()]);
    const times = await readTimestamps(device, querySet, dispatches.length + 1);
    if (rep === 0) continue; // warm-up
    dispatches.forEach((d, i) => {
      const name = d.label.replace(/^Mamba[12]\.(L\d+\.)?/, '');
      const t = totals.get(name) ?? { ns: 0, count: 0 };
      t.ns += Number((times[i + 1] as bigint) - (times[i] as bigint));
      t.count += 1;
      totals.set(name, t);
    });
  }
  plan.destroy();
  querySet.destroy();
  for (const b of [logits, ...stateBuffers(state)]) b.destroy();
  return [...totals.entries()].map(([name, t]) => ({ name, microseconds: t.ns / 1000, count: t.count })).sort((a, b) => b.microseconds - a.microseconds);
}

/** The median GPU ms of a greedy decode step over a generation of `tokens` tokens (timeStepGpu); null where no timestamp was valid. */
async function decodeStepGpuMs(ctx: GpuContext, model: LanguageModel, prompt: number[], tokens: number): Promise<number | null> {
  const session = new Session(ctx, model);
  const timer = timeStepGpu(ctx, session, Math.max(1, tokens));
  try {
    await generate(ctx, session, prompt, { maxTokens: tokens + 1, temperature: 0 });
    // A timestamp pair out of order (an implementation may write zeros) is no measurement.
    const ms = (await timer.read()).filter((t) => Number.isFinite(t) && t > 0);
    return ms.length > 0 ? median(ms) : null;
  } finally {
    timer.destroy();
    session.destroy();
  }
}

/** `model`'s first `tokens` greedy tokens after `prompt` (the app's generate, temperature 0). */
async function greedyTokens(ctx: GpuContext, model: LanguageModel, prompt: number[], tokens: number): Promise<number[]> {
  const session = new Session(ctx, model);
  try {
    return (await generate(ctx, session, prompt, { maxTokens: tokens, temperature: 0 })).ids;
  } finally {
    session.destroy();
  }
}

/** The same greedy tokens from a model of the same weights built and run with `patch` over the tuning (the setting under check turned off). */
async function referenceTokens(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, options: ChunkedBenchOptions, prompt: number[], tokens: number, patch: KernelTuning): Promise<number[]> {
  const saved = ctx.tuning;
  ctx.tuning = { ...saved, ...patch };
  const reference = buildModel(ctx, inspection, weights, options.chunk, { prefillMatmul: options.prefillMatmul ?? 'fp32' });
  try {
    return await greedyTokens(ctx, reference, prompt, tokens);
  } finally {
    reference.destroy();
    ctx.tuning = saved;
  }
}

/** How many leading tokens of `got` equal `want`'s. */
function leadingEqual(got: readonly number[], want: readonly number[]): number {
  let equal = 0;
  while (equal < want.length && got[equal] === want[equal]) equal++;
  return equal;
}

/** Greedy tokens each decode check compares. */
const CHECK_TOKENS = 64;

/**
 * Where the decode ran as one grid dispatch a layer (app/kernels/layer-grid.ts): its workgroups,
 * whether any step gave up at a barrier, and its greedy tokens against a model of the same weights
 * decoding with separate dispatches (tuning.gridDecode = false), from the same prompt.
 */
async function checkGridDecode(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, model: LanguageModel, options: ChunkedBenchOptions, prompt: number[]): Promise<BenchResult['grid_decode']> {
  const workgroups = gridDecodeWorkgroups(ctx);
  if (workgroups === null) return undefined;
  let aborted = false;
  let grid: number[] = [];
  try {
    grid = await greedyTokens(ctx, model, prompt, CHECK_TOKENS);
  } catch (e) {
    // Only a grid step that gave up is a result here; any other error is the bench's.
    if (!(await model.gridDecodeFailed())) throw e;
    aborted = true;
  }
  const plain = await referenceTokens(ctx, inspection, weights, options, prompt, CHECK_TOKENS, { gridDecode: false });
  return { workgroups, aborted, tokens: plain.length, tokens_equal: leadingEqual(grid, plain) };
}

/**
 * Where Mamba-1's decode ran with x_proj folded into in_proj (tuning.decodeXProj 'folded'): its
 * greedy tokens against a model of the same weights with x_proj separate, from the same prompt
 * (their sums run in other orders, so a random model's near-ties may part after many tokens).
 */
async function checkFoldedDecode(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, model: LanguageModel, options: ChunkedBenchOptions, prompt: number[]): Promise<BenchResult['decode_xproj_check']> {
  if (ctx.tuning?.decodeXProj !== 'folded') return undefined;
  const folded = await greedyTokens(ctx, model, prompt, CHECK_TOKENS);
  const separate = await referenceTokens(ctx, inspection, weights, options, prompt, CHECK_TOKENS, { decodeXProj: 'separate' });
  return { tokens: separate.length, tokens_equal: leadingEqual(folded, separate) };
}

export async function runBench(
  ctx: GpuContext,
  modelName: string,
  inspection: ModelInspection,
  weights: LoadedWeights,
  asked: BenchOptions,
  log: (line: string) => void,
): Promise<BenchResult> {
  const { device } = ctx;
  const config = inspection.config;
  const notes: string[] = [];
  const prefillMatmul = asked.prefillMatmul ?? 'fp32';
  const adapter = { ...ctx.adapter, limits: ctx.device.limits };
  // The prefill's chunk as the app builds the model (modelChunks), unless the caller forces one.
  const chunk = asked.chunk ?? Math.min(modelChunks(inspection, { weights: asked.weightChoice ?? 'auto', prefillMatmul, adapter }).maxTokens, Math.max(...asked.prefillTokens, 1));
  const options: ChunkedBenchOptions = { ...asked, chunk };
  const plan = planMemory(inspection, { weights: options.weightChoice ?? 'auto', prefillMatmul, maxTokens: options.chunk, adapter: { ...ctx.adapter, limits: ctx.device.limits }, model: modelName });
  const model: LanguageModel = buildModel(ctx, inspection, weights, options.chunk, { prefillMatmul });
  let quantizeMs = 0;
  if (prefillMatmul === 'int8') {
    const t = performance.now();
    model.prepareInt8Prefill();
    await device.queue.onSubmittedWorkDone();
    quantizeMs = performance.now() - t;
    log(`int8 prefill (${int8PrefillKernel(ctx)}): weights quantized in ${quantizeMs.toFixed(0)} ms, ${(model.int8Bytes / 1e9).toFixed(3)} GB`);
  }
  const V = config.vocabSize;
  const random = seededRandom(7);
  const ids = (n: number) => Array.from({ length: n }, () => Math.floor(random() * V));
  const prefill: Record<string, number> = {};
  const prefillSplit: Record<string, PrefillSplit> = {};
  for (const T of options.prefillTokens) {
    const times: number[] = [];
    const cpu: number[] = [];
    const again: number[] = [];
    for (let r = 0; r < options.warmup + options.repeats; r++) {
      const session = new Session(ctx, model);
      const prompt = ids(T);
      await device.queue.onSubmittedWorkDone();
      const t = performance.now();
      session.prefill(prompt);
      const submitted = performance.now();
      await device.queue.onSubmittedWorkDone();
      const done = performance.now();
      // The same prefill again at once, in the same session (its buffers used, no idle gap).
      session.prefill(prompt);
      await device.queue.onSubmittedWorkDone();
      if (r >= options.warmup) {
        times.push(done - t);
        cpu.push(submitted - t);
        again.push(performance.now() - done);
      }
      session.destroy();
    }
    prefill[String(T)] = T / (median(times) / 1000);
    prefillSplit[String(T)] = { call_ms: median(times), plan_encode_submit_ms: median(cpu), again_ms: median(again) };
    const split = prefillSplit[String(T)] as PrefillSplit;
    log(
      `prefill ${T} tokens: ${prefill[String(T)]?.toFixed(0)} tokens/s (median of ${options.repeats}; call ${split.call_ms.toFixed(1)} ms, of it plan+encode+submit ${split.plan_encode_submit_ms.toFixed(1)} ms; the same again at once ${split.again_ms.toFixed(1)} ms)`,
    );
    const noisy = prefillSplitNote(T, split, options.repeats);
    if (noisy) {
      notes.push(noisy);
      log(`note: ${noisy}`);
    }
  }
  // Decode: the app's generation loop itself (generate(): step + GPU sampling in one command
  // buffer, the next step submitted before the 4-byte readback of the id), greedy, after a short
  // prompt; its rate counts the decode steps only.
  // Median tokens/s of `repeats` such generations after `warmup`; sampling settings from `sampling(run)`.
  // Also the CPU a step costs (timeStepCpu), median over the same runs.
  const decodeRate = async (sampling: (run: number) => Pick<GenerateOptions, 'temperature' | 'topK' | 'topP' | 'repetitionPenalty' | 'seed'>): Promise<{ rate: number; stepCpuMs: number }> => {
    const rates: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < options.warmup + options.repeats; r++) {
      const session = new Session(ctx, model);
      const timed = timeStepCpu(session);
      const run = await generate(ctx, session, ids(16), { maxTokens: options.decodeTokens + 1, ...sampling(r) });
      if (r >= options.warmup) {
        rates.push(run.tokensPerSecond);
        cpu.push(timed.msPerStep());
      }
      session.destroy();
    }
    return { rate: median(rates), stepCpuMs: median(cpu) };
  };
  const { rate: decode, stepCpuMs } = await decodeRate(() => ({ temperature: 0 }));
  log(
    `decode: ${decode.toFixed(1)} tokens/s over ${options.decodeTokens} tokens (median of ${options.repeats}); ` +
      `the CPU encodes and submits a step in ${stepCpuMs.toFixed(3)} ms, ${decode > 0 ? ((100 * stepCpuMs * decode) / 1000).toFixed(0) : '?'} % of a token's time`,
  );
  // The GPU time of a greedy step (timestamps around its passes), one more generation: a token's
  // time well above it means the decode waits on the CPU or the queue, not on its kernels.
  const stepGpuMs = ctx.features.has('timestamp-query') ? await decodeStepGpuMs(ctx, model, ids(16), options.decodeTokens) : null;
  if (stepGpuMs !== null) {
    const tokenMs = decode > 0 ? 1000 / decode : 0;
    log(`decode step on the GPU (timestamps of its passes): ${stepGpuMs.toFixed(3)} ms a step, ${tokenMs > 0 ? ((100 * stepGpuMs) / tokenMs).toFixed(0) : '?'} % of a token's ${tokenMs.toFixed(3)} ms`);
  } else notes.push('no timestamp-query on this adapter (or no valid timestamps): no decode_step_gpu_ms');
  // The same with the app's default sampling (DEFAULT_SAMPLING: temperature 0.8, top-k 40, top-p
  // 0.95): what its top-k and top-p searches over the vocabulary add to a token.
  const decodeSampled = (await decodeRate((r) => ({ ...DEFAULT_SAMPLING, seed: r + 1 }))).rate;
  log(`decode with the app's sampling (temperature ${DEFAULT_SAMPLING.temperature}, top-k ${DEFAULT_SAMPLING.topK}, top-p ${DEFAULT_SAMPLING.topP}): ${decodeSampled.toFixed(1)} tokens/s`);
  const samplerDefault = await samplerGpuMs(ctx, V, DEFAULT_SAMPLING);
  const samplerGreedy = samplerDefault ? await samplerGpuMs(ctx, V, { ...DEFAULT_SAMPLING, temperature: 0 }) : null;
  const samplerMs = samplerDefault && samplerGreedy ? { default_sampling: samplerDefault, greedy: samplerGreedy } : null;
  if (samplerMs) {
    const f = (m: SamplerGpuMs) => `${m.candidates.toFixed(3)} ms with candidates, ${m.whole_vocabulary.toFixed(3)} ms over the whole vocabulary`;
    log(`a sampling of ${V} logits on the GPU: app's sampling ${f(samplerMs.default_sampling)}; greedy ${f(samplerMs.greedy)}`);
  } else notes.push('no timestamp-query on this adapter (or no valid timestamps): no sampler_gpu_ms');
  const gridDecode = await checkGridDecode(ctx, inspection, weights, model, options, ids(16));
  if (gridDecode) log(`grid decode: ${gridDecode.workgroups} workgroups${gridDecode.aborted ? ', ABORTED' : ''}; greedy tokens equal to the dispatch path's: ${gridDecode.tokens_equal}/${gridDecode.tokens}`);
  const foldedCheck = await checkFoldedDecode(ctx, inspection, weights, model, options, ids(16));
  if (foldedCheck) log(`x_proj folded into in_proj: greedy tokens equal to the separate x_proj's: ${foldedCheck.tokens_equal}/${foldedCheck.tokens}`);
  const int8Prefill: Int8PrefillBench | undefined =
    prefillMatmul === 'int8' ? { kernel: int8PrefillKernel(ctx), quantize_ms: quantizeMs, bytes: model.int8Bytes, ...(await int8Accuracy(ctx, inspection, weights, model, Math.min(options.chunk, 2048), ids)) } : undefined;
  if (int8Prefill) {
    const a = int8Prefill.accuracy;
    const p = int8Prefill.portable_check;
    log(
      `int8 prefill accuracy (${a.prompts} prompts of ${a.tokens} tokens, last logits against fp32): relative error median ${a.logit_rel_err_median.toExponential(2)}, max ${a.logit_rel_err_max.toExponential(2)}; top-1 agrees ${a.top1_agree}/${a.prompts}` +
        (p ? `; portable kernel: error median ${p.logit_rel_err_median.toExponential(2)}, tensor cores vs portable ${p.tensor_cores_vs_portable_max.toExponential(2)}` : ''),
    );
  }
  const result: BenchResult = {
    date: new Date().toISOString(),
    adapter: describeAdapter(ctx.adapter),
    adapterInfo: ctx.adapter,
    arch: architectureSpec(inspection.architecture).name,
    model: modelName,
    d_model: config.dModel,
    n_layer: config.nLayer,
    d_state: config.dState,
    vocab: V,
    parameters: inspection.parameters,
    dtype: options.weights ?? ([...(weights.formats?.values() ?? [])].includes('f16') ? 'f16' : 'f32'),
    weight_formats: describeWeightFormats(weights.formats ?? new Map(), inspection),
    prefill_tok_s: prefill,
    prefill_split: prefillSplit,
    decode_tok_s: decode,
    decode_step_cpu_ms: stepCpuMs,
    ...(stepGpuMs !== null ? { decode_step_gpu_ms: stepGpuMs } : {}),
    decode_sampled_tok_s: decodeSampled,
    ...(samplerMs ? { sampler_gpu_ms: samplerMs } : {}),
    ...(gridDecode ? { grid_decode: gridDecode } : {}),
    ...(foldedCheck ? { decode_xproj_check: foldedCheck } : {}),
    gpu_memory_bytes: { weights: weights.bytesOnGpu, activations: model.activationBytes, state: model.stateBytes },
    memory_plan: { source: 'planMemory (app/model/memory-plan.ts)', ...plan },
    prefill_matmul: model.prefillMatmul,
    ...(int8Prefill ? { int8_prefill: int8Prefill } : {}),
    repeats: options.repeats,
    notes,
  };
  if (options.ceilings) {
    result.ceilings = await measureCeilings(ctx, options.repeats);
    log(`ceilings: copy ${result.ceilings.copy_gb_s.toFixed(0)} GB/s, GEMM ${result.ceilings.gemm_tflop_s.toPrecision(3)} TFLOP/s`);
    if (!ctx.adapter.software) {
      // The prefill matmul shapes of this model (per layer) at 512 and 2048 tokens, and 2048³.
      const widths = architectureSpec(inspection.architecture).matmulShapes(config);
      result.gemm = [];
      for (const T of [512, 2048]) {
        for (const [I, O] of widths) {
          for (const variant of ['auto', 'tiled', 'tiled_wide'] as const) {
            result.gemm.push(await timeMatmul(ctx, T, I, O, variant, options.repeats));
            result.gemm.push(await timeMatmul(ctx, T, I, O, variant, options.repeats, 1));
          }
        }
      }
      for (const variant of ['tiled', 'tiled_wide'] as const) result.gemm.push(await timeMatmul(ctx, 2048, 2048, 2048, variant, options.repeats, 1));
      for (const g of result.gemm) log(`gemm T=${g.tokens} I=${g.in} O=${g.out} ${g.variant} splits=${g.splits}: ${g.tflop_s.toPrecision(3)} TFLOP/s`);
    }
    const weightTotal = weights.bytesOnGpu;
    result.achieved = {
      decode_bandwidth_fraction: (weightTotal * decode) / 1e9 / result.ceilings.copy_gb_s,
      prefill_flop_fraction: Object.fromEntries(
        Object.entries(prefill).map(([T, rate]) => [T, (2 * inspection.parameters * rate) / 1e12 / result.ceilings!.gemm_tflop_s]),
      ),
    };
  }
  if (options.breakdown) {
    if (ctx.features.has('timestamp-query')) {
      result.kernels = await kernelBreakdown(ctx, model, 1);
      const prefillKernels = await kernelBreakdown(ctx, model, Math.min(options.chunk, 512));
      result.kernels = [
        ...result.kernels.map((k) => ({ ...k, name: `decode ${k.name}` })),
        ...prefillKernels.map((k) => ({ ...k, name: `prefill(${Math.min(options.chunk, 512)}) ${k.name}` })),
      ];
      if (options.chunk > 512) {
        const longKernels = await kernelBreakdown(ctx, model, options.chunk);
        result.kernels.push(...longKernels.map((k) => ({ ...k, name: `prefill(${options.chunk}) ${k.name}` })));
      }
    } else notes.push('no timestamp-query on this adapter: no per-kernel breakdown');
  }
  if (options.keepModel) result.model_ref = model;
  else model.destroy();
  return result;
}

/**
 * The int8 prefill's last logits against an fp32 model's on the same weights (Int8PrefillBench.accuracy),
 * over 3 random prompts; with the tensor cores, also through the portable int8 kernel (portable_check).
 */
async function int8Accuracy(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, int8: LanguageModel, tokens: number, ids: (n: number) => number[]): Promise<Pick<Int8PrefillBench, 'accuracy' | 'portable_check'>> {
  const fp32 = buildModel(ctx, inspection, weights, int8.maxTokens);
  const portable = int8PrefillKernel(ctx) === 'tensor cores' ? buildModel(ctx, inspection, weights, int8.maxTokens, { prefillMatmul: 'int8', int8Variant: 'portable' }) : null;
  const errors: number[] = [];
  const portableErrors: number[] = [];
  let between = 0;
  let agree = 0;
  const prompts = 3;
  const argmax = (v: Float32Array) => v.reduce((best, x, i) => (x > (v[best] as number) ? i : best), 0);
  try {
    for (let p = 0; p < prompts; p++) {
      const prompt = ids(tokens);
      const logits: Float32Array[] = [];
      for (const model of [int8, fp32, ...(portable ? [portable] : [])]) {
        const session = new Session(ctx, model);
        session.prefill(prompt);
        logits.push(await session.readLogits());
        session.destroy();
      }
      const [a, b, c] = logits as [Float32Array, Float32Array, Float32Array | undefined];
      errors.push(relativeError(a, b));
      if (argmax(a) === argmax(b)) agree++;
      if (c) {
        portableErrors.push(relativeError(c, b));
        between = Math.max(between, relativeError(a, c));
      }
    }
  } finally {
    fp32.destroy();
    portable?.destroy();
  }
  return {
    accuracy: { tokens, prompts, logit_rel_err_median: median(errors), logit_rel_err_max: Math.max(...errors), top1_agree: agree },
    ...(portable ? { portable_check: { logit_rel_err_median: median(portableErrors), tensor_cores_vs_portable_max: between } } : {}),
  };
}

export function shapeConfig(name: string): MambaConfig {
  const raw = SHAPES[name];
  if (!raw) throw new Error(`unknown shape "${name}" (known: ${Object.keys(SHAPES).join(', ')})`);
  return canonicalConfig(`shape ${name}`, raw);
}
