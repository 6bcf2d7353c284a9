import { describe, expect, it } from 'vitest';
import { readF32, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { embedding, validateTokenIds } from '../../app/kernels/embedding';
import { embeddingRef } from '../../app/kernels/embedding.ref';
import { randomF32 } from '../../app/kernels/self-test';
import { useTestGpu } from '../support/gpu';

// A gather copies values: the GPU result must equal the reference exactly.

let ctx: GpuContext | null = null;
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** Random ids in 0..vocab-1 from a seeded generator. */
function randomIds(count: number, vocab: number, caseSeed: number): Uint32Array {
  const u = randomF32(count, caseSeed, 1);
  return Uint32Array.from(u, (v) => Math.min(vocab - 1, Math.floor(((v + 1) / 2) * vocab)));
}

async function runCase(ctx: GpuContext, ids: Uint32Array, vocab: number, dim: number, caseSeed: number) {
  const { device } = ctx;
  const T = ids.length;
  const table = randomF32(vocab * dim, caseSeed, 3);
  const idBuffer = storageBuffer(device, 'Test.ids', ids.byteLength);
  device.queue.writeBuffer(idBuffer, 0, ids);
  const buffers = {
    ids: idBuffer,
    table: uploadF32(device, 'Test.table', table),
    output: uploadF32(device, 'Test.output', new Float32Array(T * dim).fill(Number.NaN)), // poisoned
  };
  const dispatch = await withErrorScopes(device, 'test', () => {
    const d = embedding(ctx, { tokens: T, vocab, dim }, buffers, 'Test.embedding');
    submitDispatches(device, 'Test', [d]);
    return d;
  });
  const output = await readF32(device, buffers.output, T * dim);
  dispatch.destroy();
  for (const b of Object.values(buffers)) b.destroy();
  return { output, ref: embeddingRef(ids, table, vocab, dim) };
}

/** Number of elements that differ (bitwise, NaN included). */
function mismatches(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

describe('embedding.wgsl against its CPU reference (Dawn)', () => {
  // Odd sizes: T·D not a multiple of the 256-wide workgroup.
  for (const T of [1, 7, 300]) {
    for (const [vocab, dim] of [
      [1, 1],
      [11, 13],
      [257, 300],
    ] as const) {
      it(`T=${T} V=${vocab} D=${dim}: exact`, async (test) => {
        if (!ctx) return test.skip(skipReason);
        const caseSeed = seed + T * 7919 + vocab * 31 + dim;
        const ids = randomIds(T, vocab, caseSeed);
        const { output, ref } = await runCase(ctx, ids, vocab, dim, caseSeed + 1);
        expect(output.every(Number.isFinite), 'every output element written').toBe(true);
        expect(mismatches(output, ref)).toBe(0);
      });
    }
  }

  it('clamps ids ≥ V to row V - 1 instead of reading past the table', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const vocab = 11;
    const dim = 13;
    const ids = Uint32Array.from([0, 10, 11, 12, 5, 0xffffffff, 1000]);
    const { output, ref } = await runCase(ctx, ids, vocab, dim, seed + 5);
    expect(mismatches(output, ref)).toBe(0);
    expect(Array.from(output.subarray(2 * dim, 3 * dim))).toEqual(Array.from(output.subarray(dim, 2 * dim)));
  });

  it('lays its workgroups out in 2-D when T·D/256 exceeds the per-dimension limit', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const limit = ctx.device.limits.maxComputeWorkgroupsPerDimension;
    const dim = 257;
    const T = Math.floor((limit * 256) / dim) + 3; // just over one row of workgroups
    const ids = randomIds(T, 3, seed + 9);
    const { output, ref } = await runCase(ctx, ids, 3, dim, seed + 10);
    expect(mismatches(output, ref)).toBe(0);
  });

  it('reuses one pipeline for every shape', async (test) => {
    if (!ctx) return test.skip(skipReason);
    await runCase(ctx, Uint32Array.from([1, 2]), 3, 5, seed);
    const before = ctx.pipelines.size;
    await runCase(ctx, Uint32Array.from([0, 6, 2]), 7, 33, seed + 1);
    expect(ctx.pipelines.size).toBe(before);
  });

  it('rejects buffers too small for the shape, naming the buffer', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const device = ctx.device;
    const small = storageBuffer(device, 'Test.small', 16);
    const ok = storageBuffer(device, 'Test.ok', 4 * 100);
    const out = storageBuffer(device, 'Test.out', 4 * 100);
    expect(() => embedding(ctx!, { tokens: 5, vocab: 10, dim: 10 }, { ids: ok, table: small, output: out })).toThrow(
      /Embedding: table \(Test\.small\) holds 16 bytes, needs 400/,
    );
    expect(() => embedding(ctx!, { tokens: 5, vocab: 10, dim: 10 }, { ids: small, table: ok, output: out })).toThrow(/ids \(Test\.small\) holds 16 bytes, needs 20/);
    expect(() => embedding(ctx!, { tokens: 11, vocab: 10, dim: 10 }, { ids: ok, table: ok, output: out })).toThrow(/output \(Test\.out\) holds 400 bytes, needs 440/);
    for (const b of [small, ok, out]) b.destroy();
  });

  it('validateTokenIds names the first id outside the vocabulary', () => {
    expect(() => validateTokenIds([0, 3, 9], 10)).not.toThrow();
    expect(() => validateTokenIds([0, 10, 11], 10)).toThrow(/token id 10 at position 1 is outside the vocabulary 0\.\.9/);
    expect(() => validateTokenIds([1.5], 10)).toThrow(/token id 1\.5 at position 0/);
    expect(() => validateTokenIds([-1], 10)).toThrow(/position 0/);
  });
});
