/**
 * The memory plan of a model (issue 17): what loading and running it will take on the GPU, worked
 * out from its inspection alone, before anything is allocated, and whether that fits.
 *
 *   weights      exact: the loader makes one buffer per tensor of weightBufferBytes (memory.ts), in
 *                the format weightFormats gives for the choice; reported by format.
 *   state        one sequence: its recurrent state and its logits (memory.ts gpuMemoryNeed .session).
 *   activations  a prefill chunk of `maxTokens` tokens: activations, scratch, the prefill's own
 *                state and logits, the packed scan weights (gpuMemoryNeed .activations, exact).
 *   int8 prefill with prefillMatmul 'int8' (app/model/int8-prefill.ts): the projections' int8
 *                codes and the activations' (gpuMemoryNeed .int8, exact); 0 with fp32.
 *   trace        the trace buffers for the trace settings given, as the caller works them out
 *                (app/analysis/trace-memory.ts: this layer cannot see the recorder): GPU bytes, in
 *                the total; and the CPU copy the engine keeps of it, reported apart (never on the GPU).
 *
 * Then the adapter's limits: a tensor larger than one storage binding (maxStorageBufferBindingSize)
 * or one buffer (maxBufferSize) is listed with the bindings it is split into (memory.ts
 * weightParts: the embedding and LM head, in row ranges; the weights count the split buffers), or
 * refused when it cannot be split; an activation buffer larger than that (largestActivation) makes
 * modelChunks take the smaller chunk, and is refused at the chunk planned. And the
 * device's memory: WebGPU does not say how much a device has, so the plan uses a user-set budget
 * (gpuMemoryBudget) when there is one, else the vendor's figure for a GPU it recognises by name in
 * the adapter's strings (DEVICE_MEMORY, or a size written in the name, "A100-SXM4-80GB"), else
 * none: unknown, and nothing is refused for the total. `checkMemoryPlan` refuses a plan that does
 * not fit with a GpuError('out-of-memory') whose message has the numbers.
 */
import { GpuError } from '../gpu/errors.js';
import type { AdapterSummary } from '../gpu/adapter.js';
import type { WeightFormat } from '../kernels/weight-format.js';
import type { ModelInspection } from './inspection.js';
import type { PrefillMatmul } from './int8-plan.js';
import { gpuMemoryNeed, tensorGpuBytes, weightBufferBytes, weightFormats, weightParts, type WeightChoice } from './memory.js';

/** The trace buffers a plan counts (app/analysis/trace-memory.ts `traceMemory` works them out). */
export interface TraceMemory {
  /** Tokens traced. */
  tokens: number;
  /** Layers traced. */
  layers: number;
  /** GPU bytes: the recorder's buffers and what tracing adds (counted in the total). */
  gpu: number;
  /** CPU bytes of the copy the engine keeps of the finished trace (not GPU memory; not in the total). */
  cpu: number;
}

/** Where the device memory figure comes from. */
export type DeviceMemorySource = 'budget' | 'adapter' | 'unknown';

export interface DeviceMemory {
  /** Bytes, or null when nobody knows. */
  bytes: number | null;
  source: DeviceMemorySource;
  /** What the figure is of ("NVIDIA H200", "gpuMemoryBudget"), or why it is unknown. */
  what: string;
}

/** A tensor larger than one storage binding or one buffer (the smaller of the two limits). */
export interface OversizeTensor {
  name: string;
  /** Its bytes as one buffer. */
  bytes: number;
  format: WeightFormat;
  /**
   * The bindings (buffers of row ranges) it is split into (memory.ts weightParts: the embedding
   * and an untied LM head), or null: it cannot be split, and loading is refused.
   */
  bindings: number | null;
}

export interface MemoryPlan {
  /** The model (its folder or file name), for messages. */
  model: string;
  weightChoice: WeightChoice;
  maxTokens: number;
  /** Bytes of weights on the GPU by storage format (largest first), and their sum. */
  weights: { total: number; byFormat: { format: WeightFormat; bytes: number; tensors: number }[] };
  /** One sequence: its recurrent state and logits (a hybrid's KV caches included). */
  state: number;
  /** A hybrid's KV caches (part of `state`) and the tokens they hold; null without attention blocks. */
  kvCache: { bytes: number; tokens: number } | null;
  /** A prefill chunk of maxTokens tokens. */
  activations: number;
  /**
   * The largest activation buffer for chunks of maxTokens (memory.ts activationBuffers): with
   * limits, `overLimit` when it is larger than one binding (a model for this chunk cannot be built;
   * modelChunks then takes a smaller chunk, checkMemoryPlan refuses it).
   */
  largestActivation: { label: string; bytes: number; overLimit: boolean };
  /** How the prefill multiplies, and what the int8 prefill holds (0 with fp32). */
  prefillMatmul: PrefillMatmul;
  int8Prefill: number;
  /** The trace the plan was made for (null: none). */
  trace: TraceMemory | null;
  /** weights + state + activations + int8 prefill + trace GPU bytes. */
  total: number;
  /** The adapter's per-buffer limits, when an adapter was given (a tensor over the smaller is split or refused). */
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } | null;
  /** The tensors over a limit (empty when none, or no limits). */
  oversize: OversizeTensor[];
  device: DeviceMemory;
  /** Whether the total fits the device's memory (null: its memory is unknown). */
  fits: boolean | null;
  /** Whether the model without the trace (weights, state, activations) fits (null: memory unknown). */
  modelFits: boolean | null;
}

export interface PlanOptions {
  weights?: WeightChoice;
  /** How prefill chunks multiply (default 'fp32'; 'int8' adds its codes). */
  prefillMatmul?: PrefillMatmul;
  /** Tokens per prefill chunk (buildModel's maxTokens). Default 256. */
  maxTokens?: number;
  trace?: TraceMemory | null;
  /** The adapter (its name strings and limits); none: no limits, memory unknown unless a budget. */
  adapter?: (Pick<AdapterSummary, 'vendor' | 'architecture' | 'device' | 'description'> & Partial<Pick<AdapterSummary, 'software'>> & { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } }) | null;
  /** A user-set budget in bytes (gpuMemoryBudget): the device memory, whatever the adapter. */
  budget?: number;
  /** The model's name for messages (default: its first weight file). */
  model?: string;
}

/**
 * Vendors' memory sizes (decimal GB, as the vendors state them; the real size is never smaller) of
 * GPUs an adapter may name, most specific first. A size written in the name itself wins.
 */
export const DEVICE_MEMORY: readonly { pattern: RegExp; gb: number; name: string }[] = [
  { pattern: /\bH200\b/i, gb: 141, name: 'NVIDIA H200' },
  { pattern: /\bH100\b.*\bNVL\b/i, gb: 94, name: 'NVIDIA H100 NVL' },
  { pattern: /\bH100\b/i, gb: 80, name: 'NVIDIA H100' },
  { pattern: /\bA100\b/i, gb: 40, name: 'NVIDIA A100 (40 GB unless the name says 80GB)' },
  { pattern: /\bL40S?\b/i, gb: 48, name: 'NVIDIA L40' },
  { pattern: /\bRTX\s*6000\s*Ada\b/i, gb: 48, name: 'NVIDIA RTX 6000 Ada' },
  { pattern: /\bRTX\s*5090\b/i, gb: 32, name: 'NVIDIA GeForce RTX 5090' },
  { pattern: /\bRTX\s*4090\b/i, gb: 24, name: 'NVIDIA GeForce RTX 4090' },
  { pattern: /\bRTX\s*3090\b/i, gb: 24, name: 'NVIDIA GeForce RTX 3090' },
  { pattern: /\bRTX\s*4080\b/i, gb: 16, name: 'NVIDIA GeForce RTX 4080' },
  { pattern: /\bRTX\s*4070\s*Ti\s*Super\b/i, gb: 16, name: 'NVIDIA GeForce RTX 4070 Ti Super' },
  { pattern: /\bRTX\s*4070\b/i, gb: 12, name: 'NVIDIA GeForce RTX 4070' },
  { pattern: /\bRTX\s*4060\s*Ti\b/i, gb: 8, name: 'NVIDIA GeForce RTX 4060 Ti (8 GB unless the name says 16GB)' },
  { pattern: /\bRTX\s*4060\b/i, gb: 8, name: 'NVIDIA GeForce RTX 4060' },
  { pattern: /\bRTX\s*3080\b/i, gb: 10, name: 'NVIDIA GeForce RTX 3080 (10 GB unless the name says 12GB)' },
  { pattern: /\bRX\s*7900\s*XTX\b/i, gb: 24, name: 'AMD Radeon RX 7900 XTX' },
  { pattern: /\bMI300X\b/i, gb: 192, name: 'AMD Instinct MI300X' },
];

const GB = 1e9;

/** The device's memory as far as can honestly be told (see the file's comment). */
export function estimateDeviceMemory(adapter: PlanOptions['adapter'], budget?: number): DeviceMemory {
  if (budget !== undefined) return { bytes: budget, source: 'budget', what: 'gpuMemoryBudget' };
  if (!adapter) return { bytes: null, source: 'unknown', what: 'no adapter' };
  const name = [adapter.device, adapter.description].filter(Boolean).join(' ');
  const known = DEVICE_MEMORY.find((d) => d.pattern.test(name));
  // A size in the name ("A100-SXM4-80GB", "RTX 4060 Ti 16GB"), for a GPU the table knows.
  const written = /(\d{1,3})\s?GB\b/i.exec(name);
  if (known) {
    const gb = written ? Number(written[1]) : known.gb;
    return { bytes: gb * GB, source: 'adapter', what: written ? name.trim() : known.name };
  }
  return { bytes: null, source: 'unknown', what: `WebGPU does not tell the memory of ${name.trim() || `${adapter.vendor} ${adapter.architecture}`.trim() || 'this adapter'}` };
}

export function planMemory(inspection: ModelInspection, options: PlanOptions = {}): MemoryPlan {
  const choice = options.weights ?? 'auto';
  const maxTokens = options.maxTokens ?? 256;
  const limits = options.adapter ? { maxStorageBufferBindingSize: options.adapter.limits.maxStorageBufferBindingSize, maxBufferSize: options.adapter.limits.maxBufferSize } : null;
  const limit = limits ? Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) : undefined;
  const prefillMatmul = options.prefillMatmul ?? 'fp32';
  const need = gpuMemoryNeed(inspection, { maxTokens, weightFormat: choice, prefillMatmul, ...(limit !== undefined ? { bindingLimit: limit } : {}) });
  const formats = weightFormats(choice, inspection);
  const byFormat = new Map<WeightFormat, { bytes: number; tensors: number }>();
  const oversize: OversizeTensor[] = [];
  for (const t of inspection.tensors.values()) {
    const format = formats.get(t.name) ?? 'f32';
    const whole = weightBufferBytes(t.shape, format);
    // Split as the loader splits it (row ranges, each buffer padded as weightBytes pads it).
    const bytes = tensorGpuBytes(t.name, t.shape, format, inspection.embeddingName, limit);
    if (limit !== undefined && whole > limit) {
      const ranges = weightParts(t.name, t.shape, format, limit, inspection.embeddingName);
      oversize.push({ name: t.name, bytes: whole, format, bindings: ranges ? ranges.length : null });
    }
    const entry = byFormat.get(format) ?? { bytes: 0, tensors: 0 };
    entry.bytes += bytes;
    entry.tensors++;
    byFormat.set(format, entry);
  }
  const trace = options.trace ?? null;
  const total = need.weights + need.session + need.activations + need.int8 + (trace?.gpu ?? 0);
  const device = estimateDeviceMemory(options.adapter, options.budget);
  return {
    model: options.model ?? inspection.weightFiles[0] ?? 'the model',
    weightChoice: choice,
    maxTokens,
    weights: {
      total: need.weights,
      byFormat: [...byFormat.entries()].map(([format, e]) => ({ format, ...e })).sort((a, b) => b.bytes - a.bytes),
    },
    state: need.session,
    kvCache: need.kvCache > 0 ? { bytes: need.kvCache, tokens: need.kvTokens } : null,
    activations: need.activations,
    largestActivation: { ...need.largestActivation, overLimit: limit !== undefined && need.largestActivation.bytes > limit },
    prefillMatmul,
    int8Prefill: need.int8,
    trace,
    total,
    limits,
    oversize,
    device,
    fits: device.bytes === null ? null : total <= device.bytes,
    modelFits: device.bytes === null ? null : total - (trace?.gpu ?? 0) <= device.bytes,
  };
}

/**
 * Tokens per chunk of a plain prefill where memory allows: the bench's chunk (its prefill figures
 * and issue 19's targets are at 2,048 tokens a chunk). Fewer, larger products: on the H200 (fp32,
 * 2026-12-03) mamba-2.8b prefilled 4,322 tok/s in chunks of 2,048 against 2,732 in chunks of 256.
 */
export const PREFILL_CHUNK = 2048;
/**
 * Tokens per chunk of traced prefills and analyses (LanguageModel.analysisTokens), whose own
 * buffers grow with the chunk (knockout's [chunk × vocab] logits, a live trace's ring rows), and
 * of plain prefills where PREFILL_CHUNK does not fit.
 */
export const ANALYSIS_CHUNK = 256;

/**
 * Tokens per chunk of a plain prefill for a small model: one whose activations for this many
 * tokens take at most LONG_CHUNK_ACTIVATIONS. Its kernels fill a large GPU only at long chunks: on
 * an H100 (2026-12-05, int8 products) mamba2-130m prefilled 8,192 tokens at 272,010 tok/s in one
 * chunk against 208,310 in chunks of 2,048 (the products, the SSD's chunk kernels and the
 * quantizes each ran 1.3–2.4× faster per token). At 2.7–2.8B the GPU is full at 2,048 tokens (an
 * 8,192-token prompt ran as fast a token as a 2,048-token one) and the activations of 8,192 tokens
 * would cost 1.4 GB and more.
 */
export const LONG_PREFILL_CHUNK = 8192;
/** The most GPU bytes (the plan's activations) a chunk of LONG_PREFILL_CHUNK may take: 130m–370m models take 0.43–0.57 GB, 2.7B ones 1.4 GB. */
export const LONG_CHUNK_ACTIVATIONS = 1e9;

/** The chunks of a model whose plain prefills take `maxTokens`: analyses ANALYSIS_CHUNK, at most as many. */
export function chunksOf(maxTokens: number): { maxTokens: number; analysisTokens: number } {
  return { maxTokens, analysisTokens: Math.min(maxTokens, ANALYSIS_CHUNK) };
}

/**
 * The chunks a model is built for on a device: for plain prefills the first of LONG_PREFILL_CHUNK
 * (a small model: its activations at most LONG_CHUNK_ACTIVATIONS; not on a software adapter,
 * which runs a few workgroups at a time and would only zero larger buffers) and PREFILL_CHUNK
 * whose plan fits (or the device's memory is unknown: allocateModel then falls back if it does not
 * fit) and whose largest activation fits one binding, else ANALYSIS_CHUNK; analyses take
 * ANALYSIS_CHUNK either way.
 */
export function modelChunks(inspection: ModelInspection, options: Omit<PlanOptions, 'maxTokens'> = {}): { maxTokens: number; analysisTokens: number } {
  const long = options.adapter?.software === true ? [] : [LONG_PREFILL_CHUNK];
  for (const tokens of [...long, PREFILL_CHUNK]) {
    const plan = planMemory(inspection, { ...options, maxTokens: tokens });
    if (plan.fits === false || plan.largestActivation.overLimit) continue;
    if (tokens === LONG_PREFILL_CHUNK && plan.activations > LONG_CHUNK_ACTIVATIONS) continue;
    return chunksOf(tokens);
  }
  return chunksOf(ANALYSIS_CHUNK);
}

/** `v` with `significant` digits (at least one decimal from 10 up to 100), no exponent, no trailing zeros: "4.2", "0.038", "29.1". */
export function decimal(v: number, significant = 2): string {
  if (v === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(v)));
  const digits = Math.max(magnitude === 1 ? 1 : 0, Math.min(9, significant - 1 - magnitude));
  const text = v.toFixed(digits);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

const UNITS: readonly [string, number][] = [
  ['GB', GB],
  ['MB', 1e6],
  ['KB', 1e3],
];
const unitOf = (bytes: number): [string, number] => UNITS.find(([, scale]) => bytes >= scale) ?? ['B', 1];

/** Bytes in decimal units, three significant digits: "4.54 GB", "8.97 MB", "24 GB". */
export function formatSize(bytes: number): string {
  const [unit, scale] = unitOf(bytes);
  return `${decimal(bytes / scale, 3)} ${unit}`;
}

/** "needs 4.6 GB: weights 4.2, state 0.04[ (KV cache 0.03 for 4,096 tokens)], activations 0.3[, int8 prefill 2.5][, trace 0.1]": the parts in the total's unit. */
export function describeMemoryPlan(plan: MemoryPlan): string {
  const [, scale] = unitOf(plan.total);
  const part = (bytes: number) => decimal(bytes / scale);
  const kv = plan.kvCache ? ` (KV cache ${part(plan.kvCache.bytes)} for ${plan.kvCache.tokens.toLocaleString('en-US')} tokens)` : '';
  const parts = [`weights ${part(plan.weights.total)}`, `state ${part(plan.state)}${kv}`, `activations ${part(plan.activations)}`];
  if (plan.int8Prefill > 0) parts.push(`int8 prefill ${part(plan.int8Prefill)}`);
  if (plan.trace && plan.trace.gpu > 0) parts.push(`trace ${part(plan.trace.gpu)}`);
  return `needs ${formatSize(plan.total)}: ${parts.join(', ')}`;
}

/** The weights by format, "q4_k 2.65 GB, q6_k 1.98 GB, f32 586 MB". */
export function describeWeightsByFormat(plan: MemoryPlan): string {
  return plan.weights.byFormat.map((f) => `${f.format} ${formatSize(f.bytes)}`).join(', ');
}

/** The device's memory in words: "this GPU's 24 GB (NVIDIA GeForce RTX 4090)", "the budget of 4 GB (gpuMemoryBudget)". */
export function describeDeviceMemory(device: DeviceMemory): string {
  if (device.bytes === null) return `unknown (${device.what})`;
  return device.source === 'budget' ? `the budget of ${formatSize(device.bytes)} (gpuMemoryBudget)` : `this GPU's ${formatSize(device.bytes)} (${device.what})`;
}

/** The smaller of a plan's two per-buffer limits, in words: "134 MB, maxStorageBufferBindingSize". */
function bindingLimit(limits: NonNullable<MemoryPlan['limits']>): string {
  const which = limits.maxStorageBufferBindingSize <= limits.maxBufferSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  return `${formatSize(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize))}, ${which}`;
}

/**
 * Throws a GpuError('out-of-memory') when the plan cannot run: a tensor larger than one binding
 * that cannot be split (all but the embedding and LM head), an activation larger than one binding
 * (at this chunk), or a total over the device's memory (a budget, or a known GPU's). Nothing is
 * allocated before this. `scope` 'weights': loading the weights alone (the loader, the bench's
 * random weights, whose limits may be a test's smaller ones for the weights), without the
 * activations' per-buffer check (building the model makes that check itself: allocateModel).
 */
export function checkMemoryPlan(plan: MemoryPlan, scope: 'model' | 'weights' = 'model'): void {
  for (const t of plan.oversize) {
    if (t.bindings !== null) continue;
    throw new GpuError(
      `${plan.model}: tensor "${t.name}" needs ${formatSize(t.bytes)} as ${t.format}, more than this GPU binds in one buffer (${bindingLimit(plan.limits as NonNullable<MemoryPlan['limits']>)}), and only the embedding and LM head are split`,
      'out-of-memory',
    );
  }
  const a = plan.largestActivation;
  if (scope === 'model' && a.overLimit) {
    throw new GpuError(
      `${plan.model}: the activation "${a.label}" for prefill chunks of ${plan.maxTokens.toLocaleString('en-US')} tokens needs ${formatSize(a.bytes)}, more than this GPU binds in one buffer (${bindingLimit(plan.limits as NonNullable<MemoryPlan['limits']>)})`,
      'out-of-memory',
    );
  }
  if (plan.fits === false) {
    throw new GpuError(`${plan.model} ${describeMemoryPlan(plan)} — more than ${describeDeviceMemory(plan.device)}`, 'out-of-memory');
  }
}
