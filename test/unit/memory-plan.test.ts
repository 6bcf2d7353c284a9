/**
 * Issue 17, item 2: the memory plan (app/model/memory-plan.ts) before anything is allocated. The
 * weights are worked out here independently, from the tensor shapes and GGML's block sizes (Q4_K:
 * 144 bytes per 256 values, Q6_K: 210 per 256; F32: 4 bytes, F16: 2 per value; ggml-common.h's
 * block_q4_K = 2 halves + 12 scale bytes + 128 nibble bytes, block_q6_K = 128 + 64 + 16 + 2).
 */
import { describe, expect, it } from 'vitest';
import { GpuError } from '../../app/gpu/errors';
import type { MambaConfig } from '../../app/model/config';
import type { ModelInspection, TensorLocation } from '../../app/model/inspection';
import { ANALYSIS_CHUNK, checkMemoryPlan, decimal, describeMemoryPlan, describeWeightsByFormat, estimateDeviceMemory, formatSize, LONG_CHUNK_ACTIVATIONS, LONG_PREFILL_CHUNK, modelChunks, planMemory, PREFILL_CHUNK, type MemoryPlan, type PlanOptions } from '../../app/model/memory-plan';
import { randomInspection, shapeConfig } from '../../app/bench/bench';
import { traceMemory } from '../../app/analysis/trace-memory';
import { MATMUL_SCRATCH_ELEMENTS } from '../../app/kernels/matmul';

const Q4_K = { block: 256, bytes: 144 };
const Q6_K = { block: 256, bytes: 210 };

/** falcon-mamba-7b's shapes (its config.json): d_model 4096, 64 layers, vocab 65024, d_inner 8192, dt_rank 256, d_state 16, d_conv 4. */
const FALCON: MambaConfig = {
  architecture: 'falcon_mamba',
  source: 'gguf',
  dModel: 4096,
  nLayer: 64,
  vocabSize: 65024,
  dInner: 8192,
  dState: 16,
  dConv: 4,
  dtRank: 256,
  nHeads: 0,
  headDim: 0,
  nGroups: 0,
  chunkSize: 0,
  timeStepLimit: [0, Infinity],
  normGroupSize: 0,
  normEps: 1e-5,
  mixerRmsEps: 1e-6,
  useBias: false,
  useConvBias: true,
  tieEmbeddings: false,
};

/**
 * A falcon-mamba-7b Q4_K_M GGUF, with the types llama.cpp's Q4_K_M policy gives a Mamba model
 * (llama-quant.cpp; test/support/quantized-gguf.ts writes the same): token_embd, ssm_in and
 * ssm_out Q4_K, the output matrix Q6_K, the small 2-D weights (x_proj, dt_proj, conv) and every
 * 1-D tensor F32. `matrices`: 'q4km', or a float dtype for all five kinds of matrix ('F16').
 */
function falcon(matrices: 'q4km' | 'F16' | 'F32' = 'q4km'): { inspection: ModelInspection; shapes: Map<string, { shape: number[]; dtype: string }> } {
  const { dModel: D, nLayer: L, vocabSize: V, dInner: Di, dState: N, dConv: K, dtRank: R } = FALCON;
  const shapes = new Map<string, { shape: number[]; dtype: string }>();
  // `q`: the tensor's dtype in the Q4_K_M file; a float checkpoint has `matrices` for every big matrix (`matrix`).
  const add = (name: string, shape: number[], q: string, matrix = false) => shapes.set(name, { shape, dtype: matrices === 'q4km' ? q : matrix ? matrices : 'F32' });
  add('backbone.embeddings.weight', [V, D], 'Q4_K', true);
  for (let l = 0; l < L; l++) {
    const p = `backbone.layers.${l}.`;
    add(`${p}norm.weight`, [D], 'F32');
    add(`${p}mixer.in_proj.weight`, [2 * Di, D], 'Q4_K', true);
    add(`${p}mixer.conv1d.weight`, [Di, 1, K], 'F32');
    add(`${p}mixer.conv1d.bias`, [Di], 'F32');
    add(`${p}mixer.x_proj.weight`, [R + 2 * N, Di], 'F32', true);
    add(`${p}mixer.dt_proj.weight`, [Di, R], 'F32', true);
    add(`${p}mixer.dt_proj.bias`, [Di], 'F32');
    add(`${p}mixer.A_log`, [Di, N], 'F32');
    add(`${p}mixer.D`, [Di], 'F32');
    add(`${p}mixer.out_proj.weight`, [D, Di], 'Q4_K', true);
  }
  add('backbone.norm_f.weight', [D], 'F32');
  add('lm_head.weight', [V, D], 'Q6_K', true);
  const tensors = new Map<string, TensorLocation>();
  let parameters = 0;
  for (const [name, { shape, dtype }] of shapes) {
    parameters += shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { name, shape, file: 'falcon-mamba-7b.gguf', offset: 0, byteLength: 0, encoding: 'gguf', dtype, ggufName: name, transform: 'none' } as TensorLocation);
  }
  const inspection = {
    architecture: 'falcon_mamba',
    format: 'gguf',
    config: FALCON,
    parameters,
    tensors,
    tiedHead: false,
    embeddingName: 'backbone.embeddings.weight',
    weightFiles: ['falcon-mamba-7b.gguf'],
    weightBytes: 0,
    tokenizer: 'none',
    warnings: [],
  } satisfies ModelInspection;
  return { inspection, shapes };
}

const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** A GPU buffer's bytes: block formats and halves padded to 16 (app/kernels/weight-format.ts), fp32 as is. */
const pad16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

describe('the memory plan: weights', () => {
  it("falcon-mamba-7b with 'f32': 4 bytes per parameter (about 29 GB)", () => {
    const { inspection } = falcon();
    const plan = planMemory(inspection, { weights: 'f32' });
    expect(inspection.parameters).toBeGreaterThan(7.0e9);
    expect(inspection.parameters).toBeLessThan(7.5e9);
    expect(plan.weights.total).toBe(4 * inspection.parameters);
    expect(plan.weights.byFormat).toEqual([{ format: 'f32', bytes: 4 * inspection.parameters, tensors: inspection.tensors.size }]);
  });

  it("falcon-mamba-7b Q4_K_M with 'auto': the blocks as stored, under 6 GB (the issue's target)", () => {
    const { inspection, shapes } = falcon();
    let q4 = 0;
    let q6 = 0;
    let f32 = 0;
    for (const { shape, dtype } of shapes.values()) {
      const n = elements(shape);
      if (dtype === 'Q4_K') q4 += pad16((n / Q4_K.block) * Q4_K.bytes);
      else if (dtype === 'Q6_K') q6 += pad16((n / Q6_K.block) * Q6_K.bytes);
      else f32 += 4 * n;
    }
    const plan = planMemory(inspection, { weights: 'auto' });
    expect(plan.weights.total).toBe(q4 + q6 + f32);
    expect(Object.fromEntries(plan.weights.byFormat.map((f) => [f.format, f.bytes]))).toEqual({ q4_k: q4, q6_k: q6, f32 });
    expect(plan.weights.total).toBeLessThan(6e9);
    // And the whole plan (state, activations for 256 tokens) too.
    expect(plan.total).toBeLessThan(6e9);
  });

  it("an F16 checkpoint with 'auto': the matrices 2 bytes per value, the rest fp32, by format", () => {
    const { inspection, shapes } = falcon('F16');
    let f16 = 0;
    let f32 = 0;
    for (const { shape, dtype } of shapes.values()) {
      if (dtype === 'F16') f16 += pad16(2 * elements(shape));
      else f32 += 4 * elements(shape);
    }
    const plan = planMemory(inspection, { weights: 'auto' });
    expect(plan.weights.byFormat.map((f) => [f.format, f.bytes])).toEqual([
      ['f16', f16],
      ['f32', f32],
    ]);
    expect(f16).toBeGreaterThan(14e9); // ~7.2 billion values in the matrices
    expect(planMemory(inspection, { weights: 'f32' }).weights.total).toBe(4 * inspection.parameters);
  });
});

describe('the memory plan: state, activations, trace, total', () => {
  it('state: one sequence (conv history and SSM state per layer, fp32) and its logits', () => {
    const { inspection } = falcon();
    const { nLayer: L, dInner: Di, dState: N, dConv: K, vocabSize: V } = FALCON;
    const plan = planMemory(inspection, { weights: 'f32' });
    expect(plan.state).toBe(4 * L * Di * (K - 1 + N) + 4 * V);
    // Activations grow with the prefill chunk.
    expect(planMemory(inspection, { maxTokens: 2048 }).activations).toBeGreaterThan(plan.activations);
    expect(plan.total).toBe(plan.weights.total + plan.state + plan.activations);
  });

  it('trace (Mamba-1): Δ [Di], the x_proj rows [R + 2N] and the x tap [Di] per layer and token, plus a session, a chunk of logits and its top 5, and the read-back staging of the widest buffer', () => {
    const { nLayer: L, dInner: Di, dState: N, dtRank: R, vocabSize: V } = FALCON;
    const T = 1000;
    const trace = traceMemory(FALCON, { tokens: T, chunk: 256, sessionBytes: 123 });
    expect(trace.gpu).toBe(L * T * 4 * (Di + R + 2 * N + Di) + 123 + 256 * V * 4 + 256 * 2 * 5 * 4 + T * Di * 4);
    // The CPU copy: Δ, B, C, three per-token summaries per layer, A and A_log per layer, the top 5 (id + probability).
    expect(trace.cpu).toBe(L * (4 * T * (Di + 3 + 2 * N) + 8 * Di * N) + T * 5 * 8);
    const { inspection } = falcon();
    const plan = planMemory(inspection, { trace });
    expect(plan.total).toBe(plan.weights.total + plan.state + plan.activations + trace.gpu);
    expect(traceMemory(FALCON, { tokens: 0, chunk: 256, sessionBytes: 123 })).toEqual({ tokens: 0, layers: L, gpu: 0, cpu: 0 });
  });
});

const adapter = (device: string, limits = { maxStorageBufferBindingSize: 2 ** 32 - 4, maxBufferSize: 2 ** 40 }) => ({ vendor: 'nvidia', architecture: '', device, description: '', limits });

describe('the prefill chunk a model is built for (modelChunks)', () => {
  it('2,048 tokens a plain prefill chunk where that plan fits or the memory is unknown, else 256; analyses 256 either way', () => {
    const { inspection } = falcon();
    const plan = (maxTokens: number) => planMemory(inspection, { weights: 'auto', maxTokens });
    const small = plan(ANALYSIS_CHUNK).total;
    const large = plan(PREFILL_CHUNK).total;
    // The activations grow with the chunk: 2,048 tokens need more than 256 (so a budget between refuses only the larger).
    expect(large).toBeGreaterThan(small);
    expect([PREFILL_CHUNK, ANALYSIS_CHUNK]).toEqual([2048, 256]);
    expect(modelChunks(inspection, { weights: 'auto' })).toEqual({ maxTokens: 2048, analysisTokens: 256 });
    expect(modelChunks(inspection, { weights: 'auto', adapter: adapter('Some GPU') }).maxTokens).toBe(2048);
    expect(modelChunks(inspection, { weights: 'auto', budget: large }).maxTokens).toBe(2048);
    expect(modelChunks(inspection, { weights: 'auto', budget: large - 1 })).toEqual({ maxTokens: 256, analysisTokens: 256 });
    expect(modelChunks(inspection, { weights: 'auto', budget: small }).maxTokens).toBe(256);
    // What the chunk is chosen by includes the int8 prefill's scratch and codes.
    const int8Large = planMemory(inspection, { weights: 'auto', maxTokens: PREFILL_CHUNK, prefillMatmul: 'int8' }).total;
    expect(int8Large).toBeGreaterThan(large);
    expect(modelChunks(inspection, { weights: 'auto', prefillMatmul: 'int8', budget: int8Large - 1 }).maxTokens).toBe(256);
    expect(modelChunks(inspection, { weights: 'auto', prefillMatmul: 'int8', budget: int8Large }).maxTokens).toBe(2048);
  });
});

describe('the long chunk of a small model (LONG_PREFILL_CHUNK)', () => {
  // The bench's random models of the public shapes (their config.json values: app/bench/bench.ts SHAPES), f16 weights.
  const shape = (name: string) => randomInspection(shapeConfig(name), 'f16');

  it('mamba2-130m and mamba-130m: 8,192 tokens a plain prefill chunk (their activations for it under 1 GB); 2,048 under a budget or a binding that holds only that', () => {
    expect([LONG_PREFILL_CHUNK, LONG_CHUNK_ACTIVATIONS]).toEqual([8192, 1e9]);
    for (const name of ['mamba2-130m', 'mamba-130m']) {
      const inspection = shape(name);
      const plan = (maxTokens: number, options: Omit<PlanOptions, 'maxTokens'> = {}) => planMemory(inspection, { weights: 'auto', maxTokens, ...options });
      // d_model 768, 24 layers: the in_proj rows of 8,192 tokens alone are 8,192 × 3,352 (Mamba-2: 2·1,536 + 2·128 + 24) or 8,192 × 3,072 (Mamba-1) floats.
      expect(plan(8192).largestActivation).toEqual(name === 'mamba2-130m' ? { label: 'zxbcdt', bytes: 8192 * 3352 * 4, overLimit: false } : { label: 'xz', bytes: 8192 * 3072 * 4, overLimit: false });
      expect(plan(8192).activations).toBeLessThan(LONG_CHUNK_ACTIVATIONS);
      expect(modelChunks(inspection, { weights: 'auto' })).toEqual({ maxTokens: 8192, analysisTokens: 256 });
      // A software adapter (SwiftShader: a few workgroups at a time) gets no long chunk.
      expect(modelChunks(inspection, { weights: 'auto', adapter: { ...adapter('SwiftShader Device'), software: true } }).maxTokens).toBe(2048);
      expect(modelChunks(inspection, { weights: 'auto', adapter: { ...adapter('NVIDIA H100'), software: false } }).maxTokens).toBe(8192);
      const long = plan(8192).total;
      const large = plan(2048).total;
      expect(modelChunks(inspection, { weights: 'auto', budget: long }).maxTokens).toBe(8192);
      expect(modelChunks(inspection, { weights: 'auto', budget: long - 1 }).maxTokens).toBe(2048);
      expect(modelChunks(inspection, { weights: 'auto', budget: large - 1 }).maxTokens).toBe(256);
      // A binding between the two chunks' largest activations.
      const binding = plan(8192).largestActivation.bytes - 4;
      expect(plan(2048).largestActivation.bytes).toBeLessThanOrEqual(binding);
      expect(modelChunks(inspection, { weights: 'auto', adapter: adapter('Some GPU', { maxStorageBufferBindingSize: binding, maxBufferSize: 2 ** 40 }) }).maxTokens).toBe(2048);
    }
  });

  it('mamba-2.8b, mamba2-2.7b, falcon-mamba-7b: 2,048 (their activations for 8,192 tokens are over 1 GB: the GPU is full at 2,048 there)', () => {
    for (const name of ['mamba-2.8b', 'mamba2-2.7b', 'falcon-mamba-7b']) {
      const inspection = shape(name);
      // d_model ≥ 2,560 and d_inner ≥ 5,120: in_proj's rows of 8,192 tokens alone are over 335 MB, the five other per-token buffers as many again.
      expect(planMemory(inspection, { weights: 'auto', maxTokens: 8192 }).activations).toBeGreaterThan(LONG_CHUNK_ACTIVATIONS);
      expect(modelChunks(inspection, { weights: 'auto' }).maxTokens).toBe(2048);
    }
  });
});

describe('an activation larger than one binding (the adapter\'s per-buffer limits)', () => {
  // WebGPU's default maxStorageBufferBindingSize: 128 MiB.
  const limits = (bytes: number) => adapter('Some GPU', { maxStorageBufferBindingSize: bytes, maxBufferSize: 2 ** 40 });

  it('falcon-mamba-7b: in_proj\'s rows [T, 2·d_inner] are the largest, 2,048 × 16,384 floats = 128 MiB: a chunk of 2,048 fits a 128 MiB binding exactly, not one 4 bytes smaller (then 256)', () => {
    const { inspection } = falcon();
    const xz = (T: number) => T * 2 * FALCON.dInner * 4;
    expect(xz(2048)).toBe(2 ** 27);
    expect(planMemory(inspection, { weights: 'auto', maxTokens: 2048 }).largestActivation).toEqual({ label: 'xz', bytes: xz(2048), overLimit: false });
    expect(modelChunks(inspection, { weights: 'auto', adapter: limits(2 ** 27) }).maxTokens).toBe(2048);
    expect(modelChunks(inspection, { weights: 'auto', adapter: limits(2 ** 27 - 4) })).toEqual({ maxTokens: 256, analysisTokens: 256 });
    const large = planMemory(inspection, { weights: 'auto', maxTokens: 2048, adapter: limits(2 ** 27 - 4) });
    expect(large.largestActivation).toEqual({ label: 'xz', bytes: xz(2048), overLimit: true });
    expect(() => checkMemoryPlan(large)).toThrow(
      /^falcon-mamba-7b\.gguf: the activation "xz" for prefill chunks of 2,048 tokens needs 134 MB, more than this GPU binds in one buffer \(134 MB, maxStorageBufferBindingSize\)$/,
    );
    // Loading the weights alone does not check the activations (building the model does, and falls back to the smaller chunk).
    expect(() => checkMemoryPlan(large, 'weights')).not.toThrow();
    const small = planMemory(inspection, { weights: 'auto', maxTokens: 256, adapter: limits(2 ** 27 - 4) });
    // At 256 tokens the rows (16 MiB) are smaller than the products' split-K scratch, which does not grow with the chunk.
    expect(small.largestActivation).toEqual({ label: 'matmulScratch', bytes: 4 * MATMUL_SCRATCH_ELEMENTS, overLimit: false });
    expect(4 * MATMUL_SCRATCH_ELEMENTS).toBeGreaterThan(xz(256));
    expect(() => checkMemoryPlan(small)).not.toThrow();
  });

  it('Mamba-Codestral-7B\'s shapes: zxbcdt [T, 2·d_inner + 2·G·N + H] = 18,560 floats a token (152 MB for 2,048 tokens) is over a 128 MiB binding, so its app prefill takes 256', () => {
    // mistralai/Mamba-Codestral-7B-v0.1 config.json: hidden 4096, 64 layers, expand 2 (d_inner 8192),
    // d_state 128, n_groups 8, head_dim 64 (128 heads), chunk_size 256, vocab 32768.
    const config: MambaConfig = { ...FALCON, architecture: 'mamba2', source: 'transformers', dModel: 4096, nLayer: 64, vocabSize: 32768, dInner: 8192, dState: 128, dtRank: 0, nHeads: 128, headDim: 64, nGroups: 8, chunkSize: 256, normGroupSize: 1024, mixerRmsEps: 1e-5 };
    const inspection = { ...falcon().inspection, architecture: 'mamba2', config, tensors: new Map(), weightFiles: ['mamba-codestral'] } satisfies ModelInspection;
    const perToken = 2 * 8192 + 2 * 8 * 128 + 128;
    expect(perToken).toBe(18560);
    const plan = planMemory(inspection, { maxTokens: 2048, adapter: limits(2 ** 27) });
    expect(plan.largestActivation).toEqual({ label: 'zxbcdt', bytes: 2048 * perToken * 4, overLimit: true });
    expect(modelChunks(inspection, { adapter: limits(2 ** 27) }).maxTokens).toBe(256);
    expect(modelChunks(inspection, { adapter: limits(2 ** 28) }).maxTokens).toBe(2048);
  });
});

describe('the device memory estimate', () => {
  it('known GPUs by name (vendor figures), a size in the name wins, anything else unknown; a budget overrides', () => {
    expect(estimateDeviceMemory(adapter('NVIDIA H200'))).toMatchObject({ bytes: 141e9, source: 'adapter' });
    expect(estimateDeviceMemory(adapter('NVIDIA GeForce RTX 4090'))).toMatchObject({ bytes: 24e9, source: 'adapter' });
    expect(estimateDeviceMemory(adapter('NVIDIA A100-SXM4-80GB'))).toMatchObject({ bytes: 80e9, source: 'adapter' });
    expect(estimateDeviceMemory(adapter('NVIDIA A100-PCIE-40GB'))).toMatchObject({ bytes: 40e9 });
    expect(estimateDeviceMemory({ ...adapter(''), vendor: 'google', device: 'swiftshader-device-subzero', description: 'SwiftShader driver 5.0.0' })).toMatchObject({ bytes: null, source: 'unknown' });
    expect(estimateDeviceMemory(adapter('AMD Radeon Pro W7900'))).toMatchObject({ bytes: null, source: 'unknown' });
    expect(estimateDeviceMemory(null)).toMatchObject({ bytes: null, source: 'unknown' });
    expect(estimateDeviceMemory(adapter('NVIDIA H200'), 4e9)).toEqual({ bytes: 4e9, source: 'budget', what: 'gpuMemoryBudget' });
  });
});

describe('refusal up front, with the numbers', () => {
  it('the summary line reads as the issue asks: "needs 4.6 GB: weights 4.2, state 0.04, activations 0.3"', () => {
    const plan = { weights: { total: 4.2e9, byFormat: [] }, state: 0.04e9, activations: 0.36e9, trace: null, total: 4.6e9 } as unknown as MemoryPlan;
    expect(describeMemoryPlan(plan)).toBe('needs 4.6 GB: weights 4.2, state 0.04, activations 0.36');
    expect([decimal(29.13), decimal(4.54), decimal(0.3), decimal(0.0378), decimal(9.6e-7), decimal(0), decimal(141)]).toEqual(['29.1', '4.5', '0.3', '0.038', '0.00000096', '0', '141']);
    expect([formatSize(4.54e9), formatSize(8_970_000), formatSize(24e9), formatSize(512), formatSize(2 ** 30)]).toEqual(['4.54 GB', '8.97 MB', '24 GB', '512 B', '1.07 GB']);
    // A small model's parts are in its total's unit.
    const small = { weights: { total: 6_400 }, state: 960, activations: 8_500_000, trace: { gpu: 430_000 }, total: 8_937_360 } as unknown as MemoryPlan;
    expect(describeMemoryPlan(small)).toBe('needs 8.94 MB: weights 0.0064, state 0.00096, activations 8.5, trace 0.43');
  });

  it('falcon-mamba-7b in fp32 on a 24 GB GPU: a GpuError naming the parts and the GPU; on an H200 it fits; memory unknown: not refused', () => {
    const { inspection } = falcon();
    const small = planMemory(inspection, { weights: 'f32', adapter: adapter('NVIDIA GeForce RTX 4090') });
    expect(small.fits).toBe(false);
    let thrown: unknown = null;
    try {
      checkMemoryPlan(small);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GpuError);
    expect((thrown as GpuError).kind).toBe('out-of-memory');
    // weights 4 × 7.28e9 parameters, state 4·64·8192·19 + 4·65024 bytes (both checked above).
    expect((thrown as GpuError).message).toMatch(/^falcon-mamba-7b\.gguf needs 29\.\d GB: weights 29\.1, state 0\.04, activations 0\.\d+ — more than this GPU's 24 GB \(NVIDIA GeForce RTX 4090\)$/);
    const big = planMemory(inspection, { weights: 'f32', adapter: adapter('NVIDIA H200') });
    expect(big.fits).toBe(true);
    expect(() => checkMemoryPlan(big)).not.toThrow();
    const unknown = planMemory(inspection, { weights: 'f32', adapter: adapter('Some GPU') });
    expect(unknown.fits).toBeNull();
    expect(() => checkMemoryPlan(unknown)).not.toThrow();
    // A budget below the total is refused naming it.
    expect(() => checkMemoryPlan(planMemory(inspection, { weights: 'f32', budget: 4e9, model: 'falcon' }))).toThrow(/^falcon needs 29\.\d GB: .* — more than the budget of 4 GB \(gpuMemoryBudget\)$/);
    expect(describeWeightsByFormat(big)).toBe('f32 29.1 GB');
  });

  it('a trace that does not fit: the plan says the model fits without it (modelFits) and refuses the total with the trace chosen', () => {
    const { inspection } = falcon('F16');
    const bare = planMemory(inspection, { weights: 'auto' });
    const trace = traceMemory(FALCON, { tokens: 1024, chunk: 256, sessionBytes: bare.state });
    // 64 layers × 4·(8192 + 288 + 8192) bytes per token ≈ 4.3 MB per token: 4.4 GB for 1,024 tokens.
    expect(trace.gpu).toBeGreaterThan(4.3e9);
    const plan = planMemory(inspection, { weights: 'auto', trace, adapter: adapter('NVIDIA GeForce RTX 4080') });
    expect(bare.total).toBeLessThan(16e9);
    expect(plan.total).toBeGreaterThan(16e9);
    expect(plan).toMatchObject({ fits: false, modelFits: true });
    expect(() => checkMemoryPlan(plan)).toThrow(/, trace 4\.\d+ — more than this GPU's 16 GB \(NVIDIA GeForce RTX 4080\)$/);
    expect(() => checkMemoryPlan(planMemory(inspection, { weights: 'auto', adapter: adapter('NVIDIA GeForce RTX 4080') }))).not.toThrow();
  });

  it('a tensor over one binding: the embedding and LM head are split into row ranges (listed with their bindings), any other refused', () => {
    const { inspection } = falcon();
    const V = FALCON.vocabSize;
    const D = FALCON.dModel;
    // 256 MiB bindings: the fp32 embedding and LM head (65024 × 4096 × 4 = 1,065,353,216 bytes) are
    // split into row ranges of whole multiples of 64 rows (16 KiB each) that fit: 16,320 rows, so 4
    // ranges; in_proj (2·8192 × 4096 × 4 = 256 MiB exactly) fits one binding.
    const plan = planMemory(inspection, { weights: 'f32', adapter: adapter('NVIDIA H200', { maxStorageBufferBindingSize: 2 ** 28, maxBufferSize: 2 ** 30 }) });
    expect(plan.oversize).toEqual([
      { name: 'backbone.embeddings.weight', bytes: V * D * 4, format: 'f32', bindings: 4 },
      { name: 'lm_head.weight', bytes: V * D * 4, format: 'f32', bindings: 4 },
    ]);
    // fp32 ranges are not padded: the same bytes as one buffer.
    expect(plan.weights.total).toBe(4 * inspection.parameters);
    expect(() => checkMemoryPlan(plan)).not.toThrow();
    // 128 MiB: in_proj (256 MiB) cannot be split.
    const small = planMemory(inspection, { weights: 'f32', adapter: adapter('NVIDIA H200', { maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 30 }) });
    expect(small.oversize.find((t) => t.name === 'backbone.layers.0.mixer.in_proj.weight')).toEqual({ name: 'backbone.layers.0.mixer.in_proj.weight', bytes: 2 ** 28, format: 'f32', bindings: null });
    expect(() => checkMemoryPlan(small)).toThrow(
      /^falcon-mamba-7b\.gguf: tensor "backbone\.layers\.0\.mixer\.in_proj\.weight" needs 268 MB as f32, more than this GPU binds in one buffer \(134 MB, maxStorageBufferBindingSize\), and only the embedding and LM head are split$/,
    );
    // Q4_K_M under 128 MiB bindings: only the embedding (Q4_K, 150 MB) and LM head (Q6_K, 218 MB) are over: 2 ranges each.
    // (in_proj: 2·8192·4096 / 256 · 144 = 37.7 MB.)
    const q = planMemory(inspection, { weights: 'auto', adapter: adapter('NVIDIA H200', { maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 30 }) });
    expect(q.oversize.map((t) => [t.name, t.format, t.bindings])).toEqual([
      ['backbone.embeddings.weight', 'q4_k', 2],
      ['lm_head.weight', 'q6_k', 2],
    ]);
    expect(() => checkMemoryPlan(q)).not.toThrow();
    for (const p of [plan, small, q]) expect(p.weights.byFormat.reduce((sum, f) => sum + f.bytes, 0)).toBe(p.weights.total);
  });
});
