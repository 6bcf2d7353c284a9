/**
 * GPU for tests: a GpuContext through Dawn (app/node/dawn.ts finds a real GPU, else SwiftShader),
 * or the reason there is none, so GPU tests report themselves skipped with that reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { describeAdapter } from '../../app/gpu/adapter';
import { openGpu, type GpuContext } from '../../app/gpu/context';
import { randomF32 } from '../../app/kernels/self-test';
import { findNodeGpu } from '../../app/node/dawn';
import { inspectModel, type ModelInspection } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { loadWeights, type LoadedWeights } from '../../app/model/loader';
import { buildModel } from '../../app/arch/build';
import { readF32, storageBuffer } from '../../app/gpu/buffers';
import { Session } from '../../app/model/session';
import { folderModelFiles } from '../../app/node/folder';
import { writeRandomCheckpoint } from './random-model';

export type TestGpu = { ctx: GpuContext; description: string } | { ctx: null; reason: string };

let cached: Promise<TestGpu> | null = null;

export function getTestGpu(): Promise<TestGpu> {
  cached ??= (async (): Promise<TestGpu> => {
    try {
      const { gpu, via } = await findNodeGpu();
      const ctx = await openGpu(gpu, { onUncapturedError: (m) => console.error(`[gpu] uncaptured error: ${m}`) });
      const description = `${describeAdapter(ctx.adapter)}, found via ${via}`;
      console.info(`[gpu] tests run on: ${description}`);
      return { ctx, description };
    } catch (error) {
      return { ctx: null, reason: `no WebGPU adapter: ${error instanceof Error ? error.message : String(error)}` };
    }
  })();
  return cached;
}

/** A fresh seed per run, printed so a failure can be replayed with GPU_TEST_SEED. */
export function testSeed(): number {
  const fixed = process.env.GPU_TEST_SEED;
  const seed = fixed ? Number(fixed) : (Math.random() * 2 ** 31) >>> 0;
  console.info(`[gpu] random seed ${seed} (set GPU_TEST_SEED=${seed} to replay)`);
  return seed;
}

/** A test file's GPU (or the reason there is none) and its random seed. */
export interface SeededTestGpu {
  ctx: GpuContext | null;
  skipReason: string;
  seed: number;
}

/**
 * Opens the GPU and draws the seed (testSeed) before the file's tests, handing both to `onReady`,
 * and destroys the device after them.
 */
export function useTestGpu(onReady: (gpu: SeededTestGpu) => void): void {
  let ctx: GpuContext | null = null;
  beforeAll(async () => {
    const gpu = await getTestGpu();
    let skipReason = '';
    if (gpu.ctx) ctx = gpu.ctx;
    else skipReason = gpu.reason;
    onReady({ ctx, skipReason, seed: testSeed() });
  });
  afterAll(() => ctx?.device.destroy());
}

/**
 * For tests that drive the Engine (which opens its own device): finds Dawn's GPU before the file's
 * tests and hands it, or the reason there is none, to `onReady`.
 */
export function useNodeGpu(onReady: (found: { gpu: GPU | null; skipReason: string }) => void): void {
  beforeAll(async () => {
    try {
      onReady({ gpu: (await findNodeGpu()).gpu, skipReason: '' });
    } catch (error) {
      onReady({ gpu: null, skipReason: (error as Error).message });
    }
  });
}

/** `count` floats uniform in [lo, hi), from randomF32's seeded generator. */
export function uniformF32(count: number, seed: number, lo: number, hi: number): Float32Array {
  return randomF32(count, seed).map((r) => lo + ((r + 1) / 2) * (hi - lo));
}

/**
 * A model folder (or file) opened the way the engine opens it: inspected, its weights loaded onto
 * the GPU, and every tensor read as float32 for the CPU reference; the files are closed again.
 */
export async function loadTestModel(ctx: GpuContext, dir: string): Promise<{ inspection: ModelInspection; weights: LoadedWeights; table: Map<string, Float32Array> }> {
  const files = await folderModelFiles(dir);
  try {
    const inspection = await inspectModel(files);
    const weights = await loadWeights(ctx, files, inspection);
    const table = await readAllTensorsF32(files, inspection);
    return { inspection, weights, table };
  } finally {
    await files.close();
  }
}

/**
 * Runs `body` once with the subgroup sums the device's probe allows (GpuContext.subgroupSize) and
 * once with the barrier tree (subgroupSize null), or only with the tree where the probe found
 * none; the context's own setting (and its kernel tuning) is restored after.
 */
export async function eachSubgroupReduction(ctx: GpuContext, body: (size: number | null) => Promise<void>): Promise<void> {
  const probed = ctx.subgroupSize ?? null;
  const tuning = ctx.tuning;
  try {
    for (const size of probed ? [probed, null] : [null]) {
      ctx.subgroupSize = size;
      await body(size);
    }
  } finally {
    ctx.subgroupSize = probed;
    ctx.tuning = tuning;
  }
}

/** A model opened by loadTestModel. */
export type TestModel = Awaited<ReturnType<typeof loadTestModel>>;

/** A test file's GPU and seed (useTestGpu) with a random checkpoint and any fixture models loaded on it. */
export interface RandomModelGpu extends SeededTestGpu {
  /** The random checkpoint (writeRandomCheckpoint of `config` with the seed); unset when skipped. */
  model: TestModel;
  /** The `more` models (fixture folders, or more random checkpoints), in the order given. */
  fixtures: TestModel[];
  /** The random checkpoint's folder (removed after the file's tests). */
  dir: string;
}

/**
 * Before the file's tests: opens the GPU, draws the seed, writes a random checkpoint of the raw
 * `config` into a fresh temporary folder and loads it on the GPU, and each of `more` (a fixture
 * folder, or another raw config: a random checkpoint with the seed + its place), handing all to
 * `onReady`; after them frees the weights, the device and the folders.
 */
export function useRandomModelGpu(config: Record<string, unknown>, onReady: (gpu: RandomModelGpu) => void, more: (string | Record<string, unknown>)[] = []): void {
  const scratch = mkdtempSync(path.join(tmpdir(), 'random-model-'));
  const main = path.join(scratch, 'model');
  let loaded: TestModel[] = [];
  let ctx: GpuContext | null = null;
  beforeAll(async () => {
    const gpu = await getTestGpu();
    const seed = testSeed();
    if (!gpu.ctx) {
      onReady({ ctx: null, skipReason: gpu.reason, seed, model: undefined as unknown as TestModel, fixtures: [], dir: main });
      return;
    }
    ctx = gpu.ctx;
    writeRandomCheckpoint(main, config, seed);
    const dirs = more.map((m, k) => {
      if (typeof m === 'string') return m;
      const dir = path.join(scratch, `more-${k}`);
      writeRandomCheckpoint(dir, m, seed + k + 1);
      return dir;
    });
    for (const dir of [main, ...dirs]) loaded.push(await loadTestModel(ctx, dir));
    onReady({ ctx, skipReason: '', seed, model: loaded[0] as TestModel, fixtures: loaded.slice(1), dir: main });
  });
  afterAll(() => {
    for (const m of loaded) m.weights.destroy();
    loaded = [];
    ctx?.device.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });
}

/**
 * The logits at every position of `ids` ([T, V]) from a model built of `inspection` and `weights`
 * with prefill chunks of `maxTokens` (a prompt longer than that crosses chunks, its state carried).
 */
export async function allPositionLogits(ctx: GpuContext, inspection: ModelInspection, weights: LoadedWeights, ids: readonly number[], maxTokens: number): Promise<Float32Array> {
  const model = buildModel(ctx, inspection, weights, maxTokens);
  const session = new Session(ctx, model);
  const V = inspection.config.vocabSize;
  const logits = storageBuffer(ctx.device, 'Test.allLogits', ids.length * V * 4);
  try {
    session.prefill(ids, { allLogits: logits });
    return await readF32(ctx.device, logits, ids.length * V);
  } finally {
    logits.destroy();
    session.destroy();
    model.destroy();
  }
}
