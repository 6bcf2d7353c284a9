/**
 * Issue 14, item 2: a model too large for the GPU crashed (1,316 vkAllocateMemory failures, 20,526
 * validation errors, SIGSEGV). Now (a) the total is checked against a budget before anything is
 * allocated — the estimate (app/model/memory.ts) is checked here against what built models really
 * allocate — and (b) allocations run under out-of-memory error scopes: a device that runs out
 * (simulated: a wrapped device whose error scopes report out of memory past a byte budget) makes
 * loadWeights, building the model, and growing a trace fail with one GpuError('out-of-memory')
 * naming what and how much, with every buffer they made destroyed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../app/arch/build';
import { inspectModel } from '../../app/arch/inspect';
import { TraceRecorder } from '../../app/analysis/recorder';
import type { GpuContext } from '../../app/gpu/context';
import { allocateOrFail, GpuError } from '../../app/gpu/errors';
import { loadWeights } from '../../app/model/loader';
import { activationBuffers, gpuMemoryNeed } from '../../app/model/memory';
import { architectureLabel } from '../../app/arch/registry';
import { planMemory } from '../../app/model/memory-plan';
import { traceMemory } from '../../app/analysis/trace-memory';
import { tracePrompt } from '../../app/analysis/trace';
import { storedTraceBytes } from '../../app/analysis/trace-store';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { useTestGpu } from '../support/gpu';
import { checkpointToGguf } from '../support/quantized-gguf';
import { writeRandomCheckpoint } from '../support/random-model';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';

const golden = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/golden');
const MODELS = {
  'Mamba-1': path.join(golden, 'mamba1-bias-untied'),
  'Mamba-2': path.join(golden, 'mamba2-groups'),
  // A hybrid: its session holds the KV caches of its attention blocks (and its attention blocks' qkv conv windows).
  'mamba_ssm hybrid': path.resolve(golden, '../golden-hybrid/mamba2-attn-conv-ssm'),
};
/** Hybrids whose blocks the activations must count too: gated MLPs and RoPE (granite-h-rope), MLP blocks of their own (nemotron-h-tiny). */
const ACTIVATION_MODELS = {
  ...MODELS,
  'Granite-4.0-H with RoPE and MLPs': path.resolve(golden, '../golden-hybrid/granite-h-rope'),
  'Nemotron-H with MLP blocks': path.resolve(golden, '../golden-hybrid/nemotron-h-tiny'),
};

let ctx: GpuContext | null = null;
let skipReason = '';
useTestGpu((gpu) => ({ ctx, skipReason } = gpu));

/**
 * The real device, except that its buffers are counted, and once more than `budget` bytes are
 * live, creating another is what a device out of memory does: an invalid buffer, and an
 * out-of-memory error for the innermost out-of-memory scope (none open: an error nobody catches,
 * which this test counts as a failure).
 */
function limitedDevice(real: GPUDevice, budget: number) {
  const scopes: { filter: GPUErrorFilter; error: GPUError | null }[] = [];
  const live = new Set<GPUBuffer>();
  const counts = { created: 0, refused: 0, uncaught: 0, bytesLive: 0, peak: 0, made: [] as { label: string; size: number }[] };
  const oom = (message: string) => new GPUOutOfMemoryError(message);
  const device = new Proxy(real, {
    get(target, prop) {
      if (prop === 'createBuffer') {
        return (descriptor: GPUBufferDescriptor) => {
          counts.created++;
          const over = counts.bytesLive + descriptor.size > budget;
          // An invalid buffer, as a real device makes when its memory runs out.
          const buffer = real.createBuffer(over ? { ...descriptor, size: 4 } : descriptor);
          if (over) {
            counts.refused++;
            const scope = [...scopes].reverse().find((s) => s.filter === 'out-of-memory');
            if (scope) scope.error ??= oom(`Out of memory allocating ${descriptor.size} bytes for ${descriptor.label ?? 'a buffer'}`);
            else counts.uncaught++;
            return buffer;
          }
          counts.bytesLive += descriptor.size;
          counts.made.push({ label: descriptor.label ?? '', size: descriptor.size });
          counts.peak = Math.max(counts.peak, counts.bytesLive);
          live.add(buffer);
          const destroy = buffer.destroy.bind(buffer);
          buffer.destroy = () => {
            if (live.delete(buffer)) counts.bytesLive -= descriptor.size;
            destroy();
          };
          return buffer;
        };
      }
      if (prop === 'pushErrorScope') {
        return (filter: GPUErrorFilter) => {
          scopes.push({ filter, error: null });
          real.pushErrorScope(filter);
        };
      }
      if (prop === 'popErrorScope') {
        return () => {
          const scope = scopes.pop();
          const popped = real.popErrorScope();
          return popped.then((error) => scope?.error ?? error);
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { device, live, counts };
}

async function open(dir: string) {
  const files = await folderModelFiles(dir);
  const inspection = await inspectModel(files);
  return { files, inspection };
}

async function rejection(promise: Promise<unknown>): Promise<GpuError> {
  const outcome = await promise.then(
    () => new Error('resolved'),
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(GpuError);
  expect((outcome as GpuError).kind).toBe('out-of-memory');
  return outcome as GpuError;
}

describe('the GPU memory a model needs, before loading', () => {
  for (const [name, dir] of Object.entries(ACTIVATION_MODELS)) {
    it(`${name}: exact for the weights, the activations (buffer by buffer) and a session`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const { files, inspection } = await open(dir);
      for (const maxTokens of [1, 64, 256]) {
        const need = gpuMemoryNeed(inspection, { maxTokens });
        const weights = await loadWeights(ctx, files, inspection);
        expect(need.weights).toBe(weights.bytesOnGpu);
        // Everything building the model allocates (activations, scratch, packed scan weights) …
        const counted = limitedDevice(ctx.device, Infinity);
        const model = buildModel({ ...ctx, device: counted.device }, inspection, weights, maxTokens);
        // … plus the prefill's own state and logits (made at the first prefill).
        const built = counted.counts.bytesLive + model.stateBytes + inspection.config.vocabSize * 4;
        const before = counted.counts.bytesLive;
        const session = new Session({ ...ctx, device: counted.device }, model);
        const sessionBytes = counted.counts.bytesLive - before;
        expect(need.activations, `activations, ${maxTokens} tokens`).toBe(built);
        // Buffer by buffer: each activation the plan lists (its label and floats) is one the model made, the largest included.
        const made = new Map(counted.counts.made.map((b) => [b.label, b.size]));
        const listed = activationBuffers(inspection.config, maxTokens);
        for (const a of listed) expect(made.get(`${architectureLabel(inspection.architecture).replace(/-/g, '')}.${a.label}`), `${a.label}, ${maxTokens} tokens`).toBe(4 * a.elements);
        const largest = listed.reduce((x, y) => (y.elements > x.elements ? y : x));
        expect(need.largestActivation).toEqual({ label: largest.label, bytes: 4 * largest.elements });
        expect(need.session).toBe(sessionBytes);
        expect(need.total).toBe(need.weights + need.activations + need.session);
        // The memory plan (issue 17) reports the same: the loader's bytes and the activations exactly.
        const plan = planMemory(inspection, { weights: 'f32', maxTokens });
        expect(plan.weights.total).toBe(weights.bytesOnGpu);
        expect(plan.state).toBe(sessionBytes);
        expect(plan.activations).toBe(need.activations);
        expect(plan.total).toBe(need.total);
        session.destroy();
        model.destroy();
        weights.destroy();
      }
      await files.close();
    });
  }

  it('a budget below the total is refused before anything is allocated, naming the parts; the total itself loads', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { files, inspection } = await open(MODELS['Mamba-2']);
    const need = gpuMemoryNeed(inspection);
    const counted = limitedDevice(ctx.device, Infinity);
    const error = await rejection(loadWeights({ ...ctx, device: counted.device }, files, inspection, { gpuMemoryBudget: need.total - 1, name: 'mamba2-groups' }));
    // The memory plan's refusal (app/model/memory-plan.ts checkMemoryPlan), in decimal GB.
    expect(error.message).toMatch(/^mamba2-groups needs [\d.]+ MB: weights [\d.]+, state [\d.]+, activations [\d.]+ — more than the budget of [\d.]+ MB \(gpuMemoryBudget\)$/);
    expect(counted.counts.created).toBe(0);
    const weights = await loadWeights({ ...ctx, device: counted.device }, files, inspection, { gpuMemoryBudget: need.total });
    expect(weights.bytesOnGpu).toBe(need.weights);
    weights.destroy();
    expect(counted.live.size).toBe(0);
    await files.close();
  });
});

describe('the memory plan of a model split across bindings (issue 17)', () => {
  // Binding limits of a few rows (as test/gpu/weight-format.test.ts uses them): the vocabulary-sized
  // matrices are loaded in row ranges; the plan must count those buffers (halves pad each range).
  for (const [dir, choice, limit] of [
    [MODELS['Mamba-1'], 'f32', 256 * 256 + 16],
    [path.resolve(golden, '../pytorch-bin/hf-sharded-f16/safetensors'), 'auto', 2112 + 16],
  ] as const) {
    it(`${path.basename(dir.replace(/\/safetensors$/, ''))} (${choice}, bindings of ${limit} B): weights exact, the split tensors listed with the loader's ranges`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const { files, inspection } = await open(dir);
      const weights = await loadWeights(ctx, files, inspection, { weightFormat: choice, bindingLimit: limit });
      await files.close();
      const plan = planMemory(inspection, { weights: choice, adapter: { ...ctx.adapter, limits: { maxStorageBufferBindingSize: limit, maxBufferSize: limit } } });
      expect(plan.weights.total).toBe(weights.bytesOnGpu);
      expect(plan.weights.byFormat.reduce((sum, f) => sum + f.bytes, 0)).toBe(weights.bytesOnGpu);
      const loaded = [...(weights.parts ?? new Map()).entries()].map(([name, list]) => [name, list.length] as const);
      expect(loaded.length).toBeGreaterThan(0);
      expect(new Map(plan.oversize.map((t) => [t.name, t.bindings]))).toEqual(new Map(loaded));
      weights.destroy();
    });
  }
});

describe('the memory plan of a Q4_K_M GGUF (llama.cpp layout and policy: test/support/quantized-gguf.ts)', () => {
  it("'auto' keeps the blocks on the GPU: the plan's bytes by format are the blocks' (Q4_K 144 B, Q6_K 210 B per 256 values) and what the loader allocates", async (test) => {
    if (!ctx) return test.skip(skipReason);
    const scratch = mkdtempSync(path.join(tmpdir(), 'memory-plan-q4km-'));
    try {
      writeRandomCheckpoint(scratch, { model_type: 'mamba', hidden_size: 256, num_hidden_layers: 2, vocab_size: 256, state_size: 16, conv_kernel: 4, tie_word_embeddings: false, intermediate_size: 512, time_step_rank: 16, use_conv_bias: true }, 17);
      const checkpoint = await open(scratch);
      const table = await readAllTensorsF32(checkpoint.files, checkpoint.inspection);
      await checkpoint.files.close();
      const written = checkpointToGguf('q4km', checkpoint.inspection.config, table, 'Q4_K_M');
      const file = path.join(scratch, 'model.Q4_K_M.gguf');
      writeFileSync(file, written.bytes);
      // Bytes by format from the GGUF's own types and shapes, worked out here.
      const expected: Record<string, number> = {};
      const { files, inspection } = await open(file);
      for (const t of inspection.tensors.values()) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        const type = t.dtype as string;
        const [format, bytes] = type === 'Q4_K' ? ['q4_k', (n / 256) * 144] : type === 'Q6_K' ? ['q6_k', (n / 256) * 210] : ['f32', 4 * n];
        expected[format] = (expected[format] ?? 0) + bytes;
      }
      expect(Object.keys(expected).sort()).toEqual(['f32', 'q4_k', 'q6_k']);
      const plan = planMemory(inspection, { weights: 'auto', adapter: ctx.adapter });
      expect(Object.fromEntries(plan.weights.byFormat.map((f) => [f.format, f.bytes]))).toEqual(expected);
      const weights = await loadWeights(ctx, files, inspection, { weightFormat: 'auto' });
      await files.close();
      expect(weights.bytesOnGpu).toBe(plan.weights.total);
      weights.destroy();
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe("the memory plan's trace buffers against a real prompt trace", () => {
  for (const [name, dir] of Object.entries(MODELS)) {
    it(`${name}: the GPU bytes an upper bound of the trace's peak within 1.5×, the CPU copy exact`, async (test) => {
      if (!ctx) return test.skip(skipReason);
      const { files, inspection } = await open(dir);
      const weights = await loadWeights(ctx, files, inspection);
      await files.close();
      const maxTokens = 64;
      const model = buildModel(ctx, inspection, weights, maxTokens);
      const ids = Array.from({ length: 100 }, (_, i) => (i * 7) % inspection.config.vocabSize);
      const plan = planMemory(inspection, { weights: 'f32', maxTokens });
      const trace = traceMemory(inspection.config, { tokens: ids.length, chunk: maxTokens, sessionBytes: plan.state });
      // Once uncounted: the model makes its prefill's own state and logits at the first prefill (the plan's activations).
      await tracePrompt(ctx, { model, weights, tokenizer: null }, ids.slice(0, 3), { traceId: 'warm', modelId: name });
      const counted = limitedDevice(ctx.device, Infinity);
      const result = await tracePrompt({ ...ctx, device: counted.device }, { model, weights, tokenizer: null }, ids, { traceId: 't', modelId: name });
      expect(counted.live.size).toBe(0);
      // The trace's session makes its state through the model's own device (model.newState), uncounted above: added here
      // (a hybrid's KV caches are most of it).
      const peak = counted.counts.peak + model.stateBytes;
      console.info(`[memory-plan] ${name}, ${ids.length} tokens: trace planned ${trace.gpu} B on the GPU, peak ${peak} B; CPU copy ${trace.cpu} B`);
      expect(trace.gpu, 'trace GPU bytes').toBeGreaterThanOrEqual(peak);
      expect(trace.gpu, 'trace GPU bytes').toBeLessThanOrEqual(1.5 * peak);
      expect(trace.cpu).toBe(storedTraceBytes(result));
      model.destroy();
      weights.destroy();
    });
  }
});

describe('running out of GPU memory is one clean error, with nothing left allocated', () => {
  it('loadWeights: a GpuError naming the tensor and its bytes; every buffer it made destroyed', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { files, inspection } = await open(MODELS['Mamba-1']);
    const need = gpuMemoryNeed(inspection);
    const limited = limitedDevice(ctx.device, need.weights * 0.6);
    const error = await rejection(loadWeights({ ...ctx, device: limited.device }, files, inspection));
    expect(error.message).toMatch(/model\.safetensors: tensor "[\w.]+": out of GPU memory allocating [\d.]+ (KiB|MiB|B) \(Out of memory allocating \d+ bytes for Weights\.[\w.]+\)$/);
    expect(limited.counts.refused).toBe(1); // it stopped at the first refusal
    expect(limited.counts.uncaught).toBe(0);
    expect(limited.live.size).toBe(0);
    expect(limited.counts.bytesLive).toBe(0);
    await files.close();
  });

  it('building the model (its activations) and growing a trace: the same', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { files, inspection } = await open(MODELS['Mamba-2']);
    const weights = await loadWeights(ctx, files, inspection);
    await files.close();
    const need = gpuMemoryNeed(inspection);

    const tooSmall = limitedDevice(ctx.device, need.activations / 4);
    const error = await rejection(
      allocateOrFail(tooSmall.device, 'mamba2-groups: the activations', need.activations, () => buildModel({ ...ctx!, device: tooSmall.device }, inspection, weights), (m) => m.destroy()),
    );
    expect(error.message).toMatch(/^mamba2-groups: the activations: out of GPU memory allocating [\d.]+ MiB \(Out of memory allocating \d+ bytes for /);
    expect(tooSmall.counts.uncaught).toBe(0);
    expect(tooSmall.live.size).toBe(0);

    // Room for the model, not for a trace of 4,096 tokens of every layer.
    const model = buildModel(ctx, inspection, weights);
    const traceBytes = TraceRecorder.bytesPerToken(inspection.config, inspection.config.nLayer) * 4096;
    const noRoom = limitedDevice(ctx.device, traceBytes / 2);
    const recorder = new TraceRecorder({ ...ctx, device: noRoom.device }, model, { capacity: 4096 });
    const traceError = await rejection(recorder.read(0, 0));
    expect(traceError.message).toMatch(/^the trace of \d+ layer\(s\) for 4096 tokens: out of GPU memory allocating [\d.]+ MiB \(Out of memory allocating \d+ bytes for Trace\.L\d+\./);
    expect(noRoom.counts.uncaught).toBe(0);
    recorder.destroy();
    expect(noRoom.live.size).toBe(0);
    model.destroy();
    weights.destroy();
  });
});
