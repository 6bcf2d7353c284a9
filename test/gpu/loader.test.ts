/**
 * Streaming weights onto the GPU: exact values for F32/F16/BF16 tensors, progress, cancellation,
 * and — on a file with mamba-130m's shapes (made here, ~260 MB of F16) — bounded memory: the JS
 * heap never holds more than a few chunks, far less than the file or its largest tensor.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalConfig } from '../../app/arch/registry';
import { inspectModel, inspectSafetensorsModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { f16ToF32 } from '../../app/formats/float16';
import { readF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { expectedTensors } from '../../app/arch/tensors';
import { LoadCancelled, loadWeights, type LoadProgress } from '../../app/model/loader';
import { folderModelFiles } from '../../app/node/folder';
import { tinyModel } from '../support/gguf-writer';
import { getTestGpu } from '../support/gpu';
import { writeSafetensors, type TestTensor } from '../support/safetensors-writer';
import { TINY_CONFIG } from '../support/tiny-model';

let ctx: GpuContext | null = null;
let skipReason = '';
const scratch = mkdtempSync(path.join(tmpdir(), 'loader-'));
beforeAll(async () => {
  const gpu = await getTestGpu();
  if (gpu.ctx) ctx = gpu.ctx;
  else skipReason = gpu.reason;
});
afterAll(() => {
  ctx?.device.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

/** A tiny model whose tensors use all three float dtypes, with random values. */
function writeMixedModel(dir: string) {
  const config = canonicalConfig('config.json', TINY_CONFIG);
  const tensors: Record<string, TestTensor> = {};
  const expected = new Map<string, Float32Array>();
  expectedTensors(config, 'backbone.embeddings.weight')
    .filter((s) => !s.optional)
    .forEach((spec, i) => {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const bits = new Uint16Array(n);
      const values = Float32Array.from({ length: n }, () => Math.random() * 4 - 2);
      const dtype = (['F32', 'F16', 'BF16'] as const)[i % 3]!;
      if (dtype === 'F32') {
        tensors[spec.name] = { dtype, shape: spec.shape, data: values };
        expected.set(spec.name, values);
        return;
      }
      const f32bits = new Uint32Array(values.buffer);
      for (let j = 0; j < n; j++) bits[j] = dtype === 'BF16' ? (f32bits[j]! >>> 16) : toHalf(values[j]!);
      tensors[spec.name] = { dtype, shape: spec.shape, data: bits };
      expected.set(spec.name, Float32Array.from(bits, (b) => (dtype === 'BF16' ? new Float32Array(new Uint32Array([b << 16]).buffer)[0]! : f16ToF32(b))));
    });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(TINY_CONFIG));
  writeFileSync(path.join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return expected;
}

/** float → IEEE half bits (round toward zero; exactness is checked through f16ToF32 of these bits). */
function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | ((u >>> 13) & 0x3ff);
}

describe('weight loader (Dawn)', () => {
  it('uploads F32, F16 and BF16 tensors as exact fp32 values, with progress to the last byte', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = mkdtempSync(path.join(scratch, 'mixed-'));
    const expected = writeMixedModel(dir);
    const files = await folderModelFiles(dir);
    const inspection = await inspectSafetensorsModel(files);
    const progress: LoadProgress[] = [];
    const weights = await loadWeights(ctx, files, inspection, { chunkBytes: 40, onProgress: (p) => progress.push(p) });
    await files.close();
    for (const [name, values] of expected) {
      const got = await readF32(ctx.device, weights.buffers.get(name)!, values.length);
      expect([...got], name).toEqual([...values]);
    }
    const last = progress.at(-1)!;
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.tensorsDone).toBe(expected.size);
    expect(progress.every((p, i) => i === 0 || p.bytesDone > progress[i - 1]!.bytesDone)).toBe(true);
    weights.destroy();
  });

  it('streams GGUF tensors (F16, Q8_0, the ssm_a transform) exactly as they decode whole', async (test) => {
    if (!ctx) return test.skip(skipReason);
    let state = 12345;
    const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (const options of [
      { arch: 'mamba', matrixType: 'F16' },
      { arch: 'mamba2', untied: true, matrixType: 'Q8_0', dModel: 32 },
    ] as const) {
      const dir = mkdtempSync(path.join(scratch, 'gguf-'));
      const file = path.join(dir, 'tiny.gguf');
      writeFileSync(file, tinyModel(options, random).bytes);
      const files = await folderModelFiles(file);
      const inspection = await inspectModel(files);
      expect(inspection.format).toBe('gguf');
      const whole = await readAllTensorsF32(files, inspection);
      // 70-byte chunks: two Q8_0 blocks (34 bytes each) per read, so blocks never split.
      const weights = await loadWeights(ctx, files, inspection, { chunkBytes: 70 });
      for (const [name, values] of whole) {
        const got = await readF32(ctx.device, weights.buffers.get(name)!, values.length);
        expect([...got], `${options.arch} ${name}`).toEqual([...values]);
      }
      expect(whole.get('backbone.layers.0.mixer.A_log')!.every(Number.isFinite)).toBe(true);
      weights.destroy();
      await files.close();
    }
  });

  it('stops when cancelled and frees what it had made', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const dir = mkdtempSync(path.join(scratch, 'cancel-'));
    writeMixedModel(dir);
    const files = await folderModelFiles(dir);
    const inspection = await inspectSafetensorsModel(files);
    const controller = new AbortController();
    let calls = 0;
    const result = loadWeights(ctx, files, inspection, {
      chunkBytes: 16,
      signal: controller.signal,
      onProgress: () => {
        if (++calls === 5) controller.abort();
      },
    });
    await expect(result).rejects.toBeInstanceOf(LoadCancelled);
    expect(calls).toBe(5);
    await files.close();
  });

  it('streams a mamba-130m-shaped F16 model with bounded memory', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) return test.skip('needs node --expose-gc (set in vitest.config.ts for the gpu project)');
    // mamba-130m-hf: d_model 768, 24 layers, d_state 16, vocab 50280, dt_rank 48.
    const raw = { model_type: 'mamba', hidden_size: 768, num_hidden_layers: 24, vocab_size: 50280, state_size: 16, time_step_rank: 48 };
    const config = canonicalConfig('config.json', raw);
    const dir = mkdtempSync(path.join(scratch, 'm130-'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(raw));
    // Write the file tensor by tensor (random F16 bits, NaN/Inf patterns excluded), never whole in memory.
    const specs = expectedTensors(config, 'backbone.embeddings.weight').filter((s) => !s.optional);
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const s of specs) {
      const bytes = s.shape.reduce((a, b) => a * b, 1) * 2;
      header[s.name] = { dtype: 'F16', shape: s.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
    }
    const json = Buffer.from(JSON.stringify(header));
    const fd = openSync(path.join(dir, 'model.safetensors'), 'w');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    const block = new Uint16Array(4 * 1024 * 1024);
    for (let left = offset / 2; left > 0; left -= block.length) {
      randomFillSync(block);
      for (let i = 0; i < block.length; i++) block[i] = block[i]! & 0xbbff; // exponent < 31: finite
      writeSync(fd, block.subarray(0, Math.min(left, block.length)));
    }
    closeSync(fd);

    const folder = await folderModelFiles(dir);
    // Watch every read the loader makes: how large, and how many at once.
    let inFlight = 0;
    let maxInFlight = 0;
    let largestRead = 0;
    let bytesRead = 0;
    const files = {
      ...folder,
      open: async (file: string) => {
        const source = await folder.open(file);
        return {
          ...source,
          name: source.name,
          size: source.size,
          read: async (at: number, length: number) => {
            maxInFlight = Math.max(maxInFlight, ++inFlight);
            largestRead = Math.max(largestRead, length);
            bytesRead += length;
            try {
              return await source.read(at, length);
            } finally {
              inFlight--;
            }
          },
        };
      },
    };
    const inspection = await inspectSafetensorsModel(folder);
    expect(inspection.parameters).toBeGreaterThan(129_000_000);
    const largestTensor = Math.max(...[...inspection.tensors.values()].map((t) => t.byteLength));
    const chunkBytes = 4 * 1024 * 1024;
    gc();
    const base = process.memoryUsage();
    let peak = 0;
    let heapPeak = 0;
    let events = 0;
    const weights = await loadWeights(ctx, files, inspection, {
      chunkBytes,
      onProgress: () => {
        if (++events % 8 !== 0) return;
        gc();
        gc(); // the second collection lets the sweeper release the first one's ArrayBuffer memory
        const m = process.memoryUsage();
        // The file's bytes live in ArrayBuffers: that is the memory the bound is about (the JS
        // heap's own objects drift by megabytes with whatever else the process did).
        peak = Math.max(peak, m.arrayBuffers - base.arrayBuffers);
        heapPeak = Math.max(heapPeak, m.heapUsed - base.heapUsed);
      },
    });
    await folder.close();
    console.info(
      `[loader] reads: largest ${(largestRead / 1e6).toFixed(1)} MB, at most ${maxInFlight} at once, ${(bytesRead / 1e6).toFixed(0)} MB in all; ${(inspection.weightBytes / 1e6).toFixed(0)} MB file, ${events} progress events, ArrayBuffers peak +${(peak / 1e6).toFixed(1)} MB, JS heap peak +${(heapPeak / 1e6).toFixed(1)} MB ` +
        `(chunk ${(chunkBytes / 1e6).toFixed(1)} MB, largest tensor ${(largestTensor / 1e6).toFixed(1)} MB), ${(weights.bytesOnGpu / 1e6).toFixed(0)} MB on the GPU`,
    );
    // Bounded by construction: one read at a time, never more than a chunk, each byte read once —
    // so at most one chunk and its fp32 copy are live. Measured, the memory stays below the
    // largest tensor (the measurement is noisy: V8 frees ArrayBuffer memory lazily, after gc()).
    expect(maxInFlight).toBe(1);
    expect(largestRead).toBeLessThanOrEqual(chunkBytes);
    expect(bytesRead).toBe([...inspection.tensors.values()].reduce((sum, t) => sum + t.byteLength, 0));
    expect(peak + heapPeak).toBeLessThan(largestTensor);
    expect(weights.bytesOnGpu).toBe(inspection.parameters * 4);
    // Spot-check values: the last tensor (out_proj of the last layer) read back against the file.
    const lastSpec = specs.at(-1)!;
    const t = inspection.tensors.get(lastSpec.name)!;
    const source = await (await folderModelFiles(dir)).open('model.safetensors');
    const bits = new Uint16Array((await source.read(t.offset, t.byteLength)).slice().buffer);
    const gpu = await readF32(ctx.device, weights.buffers.get(lastSpec.name)!, bits.length);
    for (let i = 0; i < bits.length; i += 997) expect(gpu[i]).toBe(Math.fround(f16ToF32(bits[i]!)));
    weights.destroy();
  });
});
