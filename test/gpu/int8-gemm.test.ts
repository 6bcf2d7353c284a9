/**
 * The int8 matrix product (app/kernels/int8-gemm.ts) against its CPU references on random odd
 * sizes: the row quantization (codes, scales, zero padding), the product of the codes (exact
 * sums, fp32 scaling) on the portable kernel and — where the device offers int8 tensor cores —
 * on them, and the product's error against float64 of the unquantized data within the bound the
 * quantization itself allows.
 */
import { describe, expect, it } from 'vitest';
import { readF32, readBuffer, storageBuffer, uploadF32 } from '../../app/gpu/buffers';
import type { GpuContext } from '../../app/gpu/context';
import { withErrorScopes } from '../../app/gpu/errors';
import { submitDispatches } from '../../app/kernels/dispatch';
import { codeTc, codeTcBig, int8Gemm, int8RotationBlock, int8TensorCores, int8Words, quantizeRowsI8, roundUp, TC_KERNELS, tcKernelRefusal, type TcKernel } from '../../app/kernels/int8-gemm';
import { hadamardRows, hadamardRowsF32, int8GemmRef, quantizeRowsRef, unpackCodes } from '../../app/kernels/int8-gemm.ref';
import { randomF32 } from '../../app/kernels/self-test';
import { dequantizeBlocks } from '../../app/formats/ggml-quants';
import { gatedRmsNormRef } from '../../app/kernels/gated-rmsnorm.ref';
import { residualRmsNormRef } from '../../app/kernels/residual-rmsnorm.ref';
import { roundToF16, uploadF16 } from '../../app/kernels/f16';
import { uploadBlocks, type WeightFormat } from '../../app/kernels/weight-format';
import stageCode from '../../shaders/int8_stage.wgsl?raw';
import { standInSubgroupMatrix, standInTensorCoreContext } from '../support/subgroup-matrix-mock';
import { eachSubgroupReduction, useTestGpu } from '../support/gpu';
import { quantize as quantizeGgml } from '../support/ggml-quantize';

let ctx: GpuContext | null = null;

/**
 * The portable kernel, and each tensor-core kernel this device takes; on an adapter without
 * tensor cores, each one its workgroup memory holds with the subgroup-matrix builtins stood in
 * (test/support/subgroup-matrix-mock.ts: the kernels' own staging, tiles, splits and writes, with
 * the matrix products done by every invocation), each with the context to run it in.
 */
function kernels(c: GpuContext): { name: string; ctx: GpuContext; options: { variant: 'portable' | 'tensor-cores'; tcKernel?: TcKernel } }[] {
  const real = int8TensorCores(c);
  const tcCtx = real ? c : standInTensorCoreContext(c);
  const tc = int8TensorCores(tcCtx) as { subgroupSize: number };
  // Every kernel but wide-deep (main_wide with one more stage in flight: compiled by the module test below).
  const onTc = (Object.keys(TC_KERNELS) as TcKernel[]).filter((k) => k !== 'wide-deep' && tcKernelRefusal(tcCtx, tc, k) === null);
  return [
    { name: 'portable', ctx: c, options: { variant: 'portable' } },
    ...onTc.map((k) => ({ name: `tensor-cores ${k}${real ? '' : ' (stand-in)'}`, ctx: tcCtx, options: { variant: 'tensor-cores' as const, tcKernel: k } })),
  ];
}
let skipReason = '';
let seed = 0;
useTestGpu((gpu) => ({ ctx, skipReason, seed } = gpu));

/** Quantizes X [rows, cols] on the GPU; returns the GPU buffers and what they hold. */
async function quantize(ctx: GpuContext, x: Float32Array, rows: number, cols: number) {
  const { device } = ctx;
  const xs = uploadF32(device, 'Test.x', x);
  const codes = storageBuffer(device, 'Test.codes', roundUp(rows) * int8Words(cols) * 4);
  const scales = storageBuffer(device, 'Test.scales', roundUp(rows) * 4);
  // Poisoned: the padding must be written too.
  device.queue.writeBuffer(codes, 0, new Int32Array(codes.size / 4).fill(-1));
  device.queue.writeBuffer(scales, 0, new Float32Array(scales.size / 4).fill(Number.NaN));
  const op = quantizeRowsI8(ctx, { rows, cols }, { x: xs, codes, scales });
  await withErrorScopes(device, 'quantize', () => submitDispatches(device, 'Test', [op]));
  op.destroy();
  xs.destroy();
  const words = new Int32Array(await readBuffer(device, codes, codes.size));
  const s = await readF32(device, scales, roundUp(rows));
  return { codes, scales, words, s };
}

/**
 * The codes and scales of a quantize with a norm folded in against the CPU's quantization of the
 * norm's output (ref: quantizeRowsRef of the rotated output, whose scales lack 1/√block). A code
 * may differ by one where v·127/max lies within rounding of a halfway point (the norm's factor is
 * applied to the scale on the GPU, to the values on the CPU): at most two such in all.
 */
async function expectFoldedCodes(codes: GPUBuffer, scales: GPUBuffer, ref: { codes: Int8Array; scales: Float32Array }, rows: number, cols: number, block: number, what: string): Promise<void> {
  const { device } = ctx!;
  const got = unpackCodes(new Int32Array(await readBuffer(device, codes, codes.size)), rows, cols, int8Words(cols));
  const s = await readF32(device, scales, roundUp(rows));
  codes.destroy();
  scales.destroy();
  let off = 0;
  for (let e = 0; e < rows * cols; e++) {
    const d = Math.abs((got[e] as number) - (ref.codes[e] as number));
    expect(d, `code ${e} (${what})`).toBeLessThanOrEqual(1);
    off += d;
  }
  expect(off, `codes off by one (${what})`).toBeLessThanOrEqual(2);
  for (let r = 0; r < rows; r++) expect(Math.abs((s[r] as number) - (ref.scales[r] as number) / Math.sqrt(block)), `scale ${r} (${what})`).toBeLessThanOrEqual((1e-5 * (ref.scales[r] as number)) / Math.sqrt(block));
}

describe('int8 matrix product (Dawn)', () => {
  it.for([
    { M: 37, N: 45, K: 83 },
    { M: 70, N: 131, K: 200 },
    { M: 139, N: 261, K: 136 },
  ])('M=$M N=$N K=$K: codes, scales and the product equal the CPU references', async ({ M, N, K }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const s = seed + M * 7 + K;
    // Activations with a few outlier columns and a row of zeros; weights ~0.02.
    const x = randomF32(M * K, s + 1, 1);
    for (let m = 0; m < M; m++) x[m * K + 3] = (x[m * K + 3] as number) * 20;
    x.fill(0, 5 * K, 6 * K);
    const w = randomF32(N * K, s + 2, 0.02);
    const a = await quantize(ctx, x, M, K);
    const b = await quantize(ctx, w, N, K);
    const y = storageBuffer(device, 'Test.y', M * N * 4);
    try {
      // Quantization: the fp32 reference's codes (a code may differ by one where x·127/max lies
      // within rounding of a halfway point: WGSL's division is not correctly rounded), its scales,
      // zeros in the padding, scale 0 and zero codes for the zero row.
      const words = int8Words(K);
      for (const [q, data, rows] of [[a, x, M], [b, w, N]] as const) {
        const ref = quantizeRowsRef(data, rows, K);
        const got = unpackCodes(q.words, rows, K, words);
        let off = 0;
        for (let i = 0; i < rows * K; i++) {
          const d = Math.abs((got[i] as number) - (ref.codes[i] as number));
          expect(d, `code ${i}`).toBeLessThanOrEqual(1);
          if (d === 1) {
            const r = Math.floor(i / K);
            const v = ((data[i] as number) * 127) / Math.max(...Array.from(data.subarray(r * K, r * K + K), Math.abs));
            expect(Math.abs(Math.abs(v - Math.trunc(v)) - 0.5), `code ${i}: ${v} is not near a halfway point`).toBeLessThan(1e-4);
            off++;
          }
        }
        expect(off).toBeLessThanOrEqual(2);
        for (let r = 0; r < rows; r++) expect(Math.abs((q.s[r] as number) - (ref.scales[r] as number))).toBeLessThanOrEqual(1e-6 * (ref.scales[r] as number));
        const bytes = new Int8Array(q.words.buffer);
        for (let r = 0; r < roundUp(rows); r++) {
          for (let c = r < rows ? K : 0; c < words * 4; c++) expect(bytes[r * words * 4 + c], `padding (${r}, ${c})`).toBe(0);
        }
        for (let r = rows; r < roundUp(rows); r++) expect(q.s[r]).toBe(0);
      }
      expect(a.s[5]).toBe(0);

      // The product of the GPU's codes: exact integer sums, scaled in fp32.
      const qa = unpackCodes(a.words, M, K, words);
      const qw = unpackCodes(b.words, N, K, words);
      const want = int8GemmRef(qa, a.s, qw, b.s, M, N, K);
      if (!int8TensorCores(ctx)) console.info(`[int8] no int8 tensor cores on this adapter (${ctx.adapter.description || ctx.adapter.device}): the portable kernel only`);
      for (const { name: variant, ctx: kernelCtx, options } of kernels(ctx)) {
        device.queue.writeBuffer(y, 0, new Float32Array(M * N).fill(Number.NaN));
        const op = int8Gemm(kernelCtx, { m: M, n: N, k: K }, { qa: a.codes, sa: a.scales, qw: b.codes, sw: b.scales, y }, options);
        await withErrorScopes(device, variant, () => submitDispatches(device, 'Test', [op]));
        op.destroy();
        const got = await readF32(device, y, M * N);
        for (let i = 0; i < M * N; i++) expect(Math.abs((got[i] as number) - (want[i] as number)), `${variant} y[${i}]`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i] as number) + 1e-30);
        // Against float64 of the unquantized data: within what the codes allow, |x − q·s| ≤ s/2 per
        // element, so |Δy| ≤ Σ_k (|x_k|·s_w + |w_k|·s_a + s_a·s_w/2) / 2 (plus fp32 rounding).
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < N; n++) {
            let exact = 0;
            let bound = 0;
            for (let k = 0; k < K; k++) {
              const xv = x[m * K + k] as number;
              const wv = w[n * K + k] as number;
              exact += xv * wv;
              bound += (Math.abs(xv) * (b.s[n] as number) + Math.abs(wv) * (a.s[m] as number) + ((a.s[m] as number) * (b.s[n] as number)) / 2) / 2;
            }
            expect(Math.abs((got[m * N + n] as number) - exact), `${variant} (${m}, ${n})`).toBeLessThanOrEqual(bound * (1 + 1e-5) + 1e-7);
          }
        }
      }
    } finally {
      for (const buffer of [a.codes, a.scales, b.codes, b.scales, y]) buffer.destroy();
    }
  });

  it.for([
    { format: 'f16', rows: 67, cols: 96 },
    { format: 'q8_0', rows: 45, cols: 160 },
    { format: 'q4_k', rows: 19, cols: 512 },
  ] as { format: WeightFormat; rows: number; cols: number }[])('a $format weight ($rows × $cols) quantizes as its fp32 values do', async ({ format, rows, cols }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const values = randomF32(rows * cols, seed + cols, 0.05);
    values[3] = 0.4; // an outlier sets row 0's scale
    let stored: GPUBuffer;
    let seen: Float32Array;
    if (format === 'f16') {
      stored = uploadF16(device, 'Test.w16', values);
      seen = roundToF16(values);
    } else {
      const type = format === 'q8_0' ? 'Q8_0' : 'Q4_K';
      const bytes = quantizeGgml(type, values);
      stored = uploadBlocks(device, 'Test.wq', format === 'q8_0' ? 'q8_0' : 'q4_k', bytes);
      seen = dequantizeBlocks('test', { name: 'w', dtype: type }, bytes, rows * cols);
    }
    const plain = uploadF32(device, 'Test.w32', seen);
    const words = int8Words(cols);
    const out = [0, 1].map((i) => ({ codes: storageBuffer(device, `Test.codes${i}`, roundUp(rows) * words * 4), scales: storageBuffer(device, `Test.scales${i}`, roundUp(rows) * 4) }));
    try {
      const ops = [quantizeRowsI8(ctx, { rows, cols, format }, { x: stored, ...out[0]! }), quantizeRowsI8(ctx, { rows, cols }, { x: plain, ...out[1]! })];
      await withErrorScopes(device, 'quantize formats', () => submitDispatches(device, 'Test', ops));
      for (const op of ops) op.destroy();
      const [a, b] = await Promise.all(out.map(async (o) => ({ codes: new Int32Array(await readBuffer(device, o.codes, o.codes.size)), scales: await readF32(device, o.scales, roundUp(rows)) })));
      expect(Array.from(a!.codes)).toEqual(Array.from(b!.codes));
      expect(Array.from(a!.scales)).toEqual(Array.from(b!.scales));
      // And those are the reference's codes of the values the format holds.
      const ref = quantizeRowsRef(seen, rows, cols);
      const got = unpackCodes(a!.codes, rows, cols, words);
      let off = 0;
      for (let i = 0; i < rows * cols; i++) off += Math.abs((got[i] as number) - (ref.codes[i] as number));
      expect(off, 'codes off by one (halfway points only)').toBeLessThanOrEqual(2);
    } finally {
      for (const b of [stored, plain, ...out.flatMap((o) => [o.codes, o.scales])]) b.destroy();
    }
  });

  // quantize_rot takes a row in passes of 1,024 columns, the first 8 kept in registers: one partial
  // pass (96, 768), two and a half (2,560), and nine (8,448: the ninth rotated again for its codes);
  // blocks of 4 (20 columns), 32 (96) and 256.
  it.for([
    { M: 37, N: 29, K: 96, format: 'f32' },
    { M: 19, N: 70, K: 768, format: 'f16' },
    { M: 6, N: 5, K: 20, format: 'f32' },
    { M: 5, N: 9, K: 2560, format: 'f16' },
    { M: 3, N: 4, K: 8448, format: 'f32' },
  ] as { M: number; N: number; K: number; format: WeightFormat }[])('Hadamard-rotated rows, K=$K ($format weights): the codes of X·H, and the product still X·Wᵀ within the bound', async ({ M, N, K, format }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const block = int8RotationBlock(K);
    expect(block).toBe(({ 20: 4, 96: 32 } as Record<number, number>)[K] ?? 256);
    // Activations with outlier columns (what the rotation is for), weights ~0.03.
    const x = randomF32(M * K, seed + K, 1);
    for (let m = 0; m < M; m++) x[m * K + 5] = (x[m * K + 5] as number) * 30;
    const wValues = randomF32(N * K, seed + K + 1, 0.03);
    const w = format === 'f16' ? roundToF16(wValues) : wValues;
    const xs = uploadF32(device, 'Test.x', x);
    const ws = format === 'f16' ? uploadF16(device, 'Test.w', wValues) : uploadF32(device, 'Test.w', w);
    const words = int8Words(K);
    const q = [M, N].map((rows, i) => ({ codes: storageBuffer(device, `Test.codes${i}`, roundUp(rows) * words * 4), scales: storageBuffer(device, `Test.scales${i}`, roundUp(rows) * 4) }));
    const y = storageBuffer(device, 'Test.y', M * N * 4);
    try {
      const ops = [
        quantizeRowsI8(ctx, { rows: M, cols: K, rotate: block }, { x: xs, ...q[0]! }),
        quantizeRowsI8(ctx, { rows: N, cols: K, format, rotate: block }, { x: ws, ...q[1]! }),
      ];
      await withErrorScopes(device, 'quantize_rot', () => submitDispatches(device, 'Test', ops));
      for (const op of ops) op.destroy();
      const got = await Promise.all(q.map(async (b, i) => ({ words: new Int32Array(await readBuffer(device, b.codes, b.codes.size)), s: await readF32(device, b.scales, roundUp(i === 0 ? M : N)) })));
      // The codes of the rotated rows: the same fp32 butterflies here (hadamardRowsF32), so a code
      // may differ by one only where WGSL's division 127 / max is not correctly rounded (a halfway
      // point); the scales carry the rotation's 1/√block.
      for (const [i, rows, data] of [[0, M, x], [1, N, w]] as const) {
        const ref = quantizeRowsRef(hadamardRowsF32(data, rows, K, block), rows, K);
        const codes = unpackCodes(got[i]!.words, rows, K, words);
        let off = 0;
        for (let e = 0; e < rows * K; e++) {
          const d = Math.abs((codes[e] as number) - (ref.codes[e] as number));
          expect(d, `code ${e}`).toBeLessThanOrEqual(1);
          off += d;
        }
        expect(off, 'codes off by one').toBeLessThanOrEqual(2);
        for (let r = 0; r < rows; r++) expect(Math.abs((got[i]!.s[r] as number) - (ref.scales[r] as number) / Math.sqrt(block))).toBeLessThanOrEqual((1e-6 * (ref.scales[r] as number)) / Math.sqrt(block));
        const bytes = new Int8Array(got[i]!.words.buffer);
        for (let r = 0; r < roundUp(rows); r++) for (let c = r < rows ? K : 0; c < words * 4; c++) expect(bytes[r * words * 4 + c], `padding (${r}, ${c})`).toBe(0);
      }
      // The product of rotated codes is X·Wᵀ (H·Hᵀ = I) within the quantization's bound on the rotated values.
      const xr = hadamardRows(x, M, K, block);
      const wr = hadamardRows(w, N, K, block);
      const sa = got[0]!.s;
      const sw = got[1]!.s;
      const op = int8Gemm(ctx, { m: M, n: N, k: K }, { qa: q[0]!.codes, sa: q[0]!.scales, qw: q[1]!.codes, sw: q[1]!.scales, y });
      await withErrorScopes(device, 'gemm', () => submitDispatches(device, 'Test', [op]));
      op.destroy();
      const out = await readF32(device, y, M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let bound = 0;
          for (let k = 0; k < K; k++) {
            exact += (x[m * K + k] as number) * (w[n * K + k] as number);
            bound += (Math.abs(xr[m * K + k] as number) * (sw[n] as number) + Math.abs(wr[n * K + k] as number) * (sa[m] as number) + ((sa[m] as number) * (sw[n] as number)) / 2) / 2;
          }
          // + one code step of slack for each of the ≤ 2 flipped codes
          expect(Math.abs((out[m * N + n] as number) - exact), `(${m}, ${n})`).toBeLessThanOrEqual(bound * (1 + 1e-4) + 2 * 128 * (sa[m] as number) * (sw[n] as number) + 1e-6);
        }
      }
    } finally {
      for (const b of [xs, ws, y, ...q.flatMap((b) => [b.codes, b.scales])]) b.destroy();
    }
  });

  it('the quantizers with subgroups (the max by subgroupMax, butterflies in a subgroup by shuffles) give the codes and scales of the workgroup-memory path, exactly', async (test) => {
    if (!ctx) return test.skip(skipReason);
    if (!ctx.subgroupSize) return test.skip(`no subgroups of a known layout on ${ctx.adapter.description || ctx.adapter.device}`);
    const { device } = ctx;
    for (const [rows, cols, rotate] of [[7, 20, 4], [5, 96, 32], [9, 768, 256], [3, 2560, 256], [2, 8448, 256], [6, 100, 0]] as const) {
      const x = randomF32(rows * cols, seed + cols + rotate, 1);
      x[2] = 40; // an outlier sets row 0's scale
      const xs = uploadF32(device, 'Test.x', x);
      const words = int8Words(cols);
      const results: { codes: number[]; scales: number[] }[] = [];
      try {
        await eachSubgroupReduction(ctx, async () => {
          const codes = storageBuffer(device, 'Test.codes', roundUp(rows) * words * 4);
          const scales = storageBuffer(device, 'Test.scales', roundUp(rows) * 4);
          const op = quantizeRowsI8(ctx!, { rows, cols, ...(rotate ? { rotate } : {}) }, { x: xs, codes, scales });
          await withErrorScopes(device, 'quantize', () => submitDispatches(device, 'Test', [op]));
          op.destroy();
          results.push({ codes: Array.from(new Int32Array(await readBuffer(device, codes, codes.size))), scales: Array.from(await readF32(device, scales, roundUp(rows))) });
          codes.destroy();
          scales.destroy();
        });
      } finally {
        xs.destroy();
      }
      expect(results).toHaveLength(2);
      expect(results[0]!.codes, `${rows} × ${cols}, block ${rotate}: codes`).toEqual(results[1]!.codes);
      expect(results[0]!.scales, `${rows} × ${cols}, block ${rotate}: scales`).toEqual(results[1]!.scales);
    }
  });

  // Mamba-2's one-group gated RMSNorm folded into the rotating quantize: one partial pass (96,
  // 768), two and a half (2,560), nine (8,448: the ninth rotated again for its codes, its Σ u²
  // counted once); z a strided view; with the subgroup reductions and without.
  it.for([
    { rows: 7, cols: 96 },
    { rows: 5, cols: 768 },
    { rows: 3, cols: 2560 },
    { rows: 2, cols: 8448 },
  ])('the gated norm folded in ($rows × $cols): the codes and scales of quantizing the norm\'s output', async ({ rows, cols }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const block = int8RotationBlock(cols);
    const [zOffset, zStride, eps] = [5, cols + 9, 1e-5];
    const y = randomF32(rows * cols, seed + cols, 1);
    y[3] = 25; // an outlier
    const z = randomF32(zOffset + rows * zStride, seed + cols + 1, 3);
    const g = randomF32(cols, seed + cols + 2, 1.5);
    const normed = Float32Array.from(gatedRmsNormRef(y, z, zOffset, zStride, g, rows, cols, cols, eps));
    const ref = quantizeRowsRef(hadamardRowsF32(normed, rows, cols, block), rows, cols);
    const [ys, zs, gs] = [uploadF32(device, 'Test.y', y), uploadF32(device, 'Test.z', z), uploadF32(device, 'Test.g', g)];
    const words = int8Words(cols);
    try {
      await eachSubgroupReduction(ctx, async (sg) => {
        const codes = storageBuffer(device, 'Test.codes', roundUp(rows) * words * 4);
        const scales = storageBuffer(device, 'Test.scales', roundUp(rows) * 4);
        const op = quantizeRowsI8(ctx!, { rows, cols, rotate: block, gated: { zOffset, zStride, eps } }, { x: ys, z: zs, g: gs, codes, scales });
        await withErrorScopes(device, 'quantize gated', () => submitDispatches(device, 'Test', [op]));
        op.destroy();
        await expectFoldedCodes(codes, scales, ref, rows, cols, block, `subgroups ${sg}`);
      });
    } finally {
      for (const b of [ys, zs, gs]) b.destroy();
    }
  });

  // The block's residual add and RMSNorm folded into the rotating quantize (in_proj's): the same
  // passes as the gated norm's (the ninth of 8,448 columns reads its residual back), the first
  // layer's (no residual in) and a layer's with hidden and output scales (Granite's multipliers).
  it.for([
    { rows: 7, cols: 96, hasResidual: true, hiddenScale: 1, outScale: 1 },
    { rows: 5, cols: 768, hasResidual: false, hiddenScale: 1, outScale: 1 },
    { rows: 3, cols: 2560, hasResidual: true, hiddenScale: 0.22, outScale: 1.7 },
    { rows: 2, cols: 8448, hasResidual: true, hiddenScale: 1, outScale: 1 },
  ])('the residual norm folded in ($rows × $cols, residual in: $hasResidual): the norm\'s residual, and the codes and scales of quantizing its output', async ({ rows, cols, hasResidual, hiddenScale, outScale }, test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const block = int8RotationBlock(cols);
    const eps = 1e-5;
    const hidden = randomF32(rows * cols, seed + cols + 3, 1);
    hidden[cols + 5] = -30; // an outlier
    const before = randomF32(rows * cols, seed + cols + 4, 2);
    const g = randomF32(cols, seed + cols + 5, 1.5);
    const norm = residualRmsNormRef(hidden, hasResidual ? before : null, g, rows, cols, eps, { hidden: hiddenScale, out: outScale });
    const ref = quantizeRowsRef(hadamardRowsF32(Float32Array.from(norm.output), rows, cols, block), rows, cols);
    const [hs, gs] = [uploadF32(device, 'Test.hidden', hidden), uploadF32(device, 'Test.g', g)];
    const words = int8Words(cols);
    try {
      await eachSubgroupReduction(ctx, async (sg) => {
        const residual = uploadF32(device, 'Test.residual', before);
        const codes = storageBuffer(device, 'Test.codes', roundUp(rows) * words * 4);
        const scales = storageBuffer(device, 'Test.scales', roundUp(rows) * 4);
        const op = quantizeRowsI8(ctx!, { rows, cols, rotate: block, residual: { hasResidual, hiddenScale, outScale, eps } }, { x: hs, g: gs, residual, codes, scales });
        await withErrorScopes(device, 'quantize residual', () => submitDispatches(device, 'Test', [op]));
        op.destroy();
        const after = await readF32(device, residual, rows * cols);
        residual.destroy();
        // fp32's two roundings (s·hidden, then the sum): each within 2⁻²⁴ of |s·hidden| + |residual|.
        for (let e = 0; e < rows * cols; e++) {
          const bound = 2 ** -23 * (Math.abs((hidden[e] as number) * hiddenScale) + (hasResidual ? Math.abs(before[e] as number) : 0));
          expect(Math.abs((after[e] as number) - (norm.residual[e] as number)), `residual ${e} (subgroups ${sg})`).toBeLessThanOrEqual(bound);
        }
        await expectFoldedCodes(codes, scales, ref, rows, cols, block, `subgroups ${sg}`);
      });
    } finally {
      for (const b of [hs, gs]) b.destroy();
    }
  });

  it('refuses the residual norm without its buffers or a rotation, beside the gated norm, or on a residual that is also written', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const b = (label: string, floats: number) => storageBuffer(device, label, floats * 4);
    const [h, r, g, codes, scales] = [b('h', 4 * 64), b('r', 4 * 64), b('g', 64), b('codes', 64 * 16), b('scales', 64)];
    const residual = { hasResidual: true, eps: 1e-5 };
    try {
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, residual }, { x: h, g, codes, scales })).toThrow('Int8Gemm: the residual norm needs residual and g');
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, residual }, { x: h, g, residual: r, codes, scales })).toThrow(/folded into the rotating quantize only/);
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, residual, gated: { zOffset: 0, zStride: 64, eps: 1e-5 } }, { x: h, z: r, g, residual: r, codes, scales })).toThrow(/not the gated and the residual norm both/);
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, residual }, { x: h, g, residual: codes, codes, scales })).toThrow(/residual and codes are the same buffer/);
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, residual: { ...residual, hiddenScale: Number.NaN } }, { x: h, g, residual: r, codes, scales })).toThrow(/scales must be finite/);
      expect(() => quantizeRowsI8(ctx!, { rows: 5, cols: 64, rotate: 64, residual }, { x: b('h5', 5 * 64), g, residual: r, codes, scales })).toThrow(/residual \(r\) holds/);
    } finally {
      for (const x of [h, r, g, codes, scales]) x.destroy();
    }
  });

  // The tensor-core kernels' module resolves here too, its subgroup-matrix builtins stood in
  // (test/support/subgroup-matrix-mock.ts): every other name, type and expression of the
  // kernels and their staging is checked on any adapter, and each kernel's pipeline is made where
  // its workgroup memory fits — by the product tests above, which compile and run every kernel
  // kernels() lists, and here for the others (SwiftShader compiles each for ~5 s).
  it('the tensor-core kernels\' module resolves with its subgroup-matrix builtins stood in', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const modules = { tc: device.createShaderModule({ label: 'Test.int8TcStandIn', code: standInSubgroupMatrix(codeTc) }), big: device.createShaderModule({ label: 'Test.int8TcBigStandIn', code: standInSubgroupMatrix(codeTcBig) }) };
    for (const module of Object.values(modules)) {
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      expect(errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`), module.label).toEqual([]);
    }
    const run = new Set(kernels(ctx).map((k) => k.options.tcKernel));
    let fitting = 0;
    for (const kernel of Object.keys(TC_KERNELS) as TcKernel[]) {
      const { entryPoint, module, constants } = TC_KERNELS[kernel];
      if (tcKernelRefusal(ctx, { subgroupSize: 32 }, kernel) !== null) continue;
      fitting++;
      if (run.has(kernel)) continue;
      await withErrorScopes(device, `tensor-core kernel ${kernel}`, async () => device.createComputePipeline({ layout: 'auto', compute: { module: modules[module], entryPoint, constants: { SG: 32, ...constants } } }));
    }
    expect(fitting, 'kernels whose workgroup memory fits this device').toBeGreaterThan(0);
  });

  // The tensor-core kernels' staging (int8_stage.wgsl) runs on any adapter: each invocation's
  // vec4 t of an operand lands at words 4·(t % KV) .. + 3 of row t / KV (rows of SROWW = 20 words,
  // read here block after block of 16 rows as the kernels' fragment loads take them)
  // of the buffer it is stored to, whatever order the invocation writes its words in, and nothing
  // else is written. For each tile the kernels take (64: 4 subgroups of 32; 128: 8) that this
  // adapter's workgroup memory holds (SwiftShader: the 64 tile).
  it('the tensor-core kernels\' staging stores each vec4 of a stage at its row and words', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [SG, KV, SROWW] = [32, 4, 20];
    const module = device.createShaderModule({
      label: 'Test.int8Stage',
      code: `${stageCode}
@group(0) @binding(0) var<storage, read> src: array<vec4<i32>>;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@compute @workgroup_size(NSG * SG)
fn main(@builtin(local_invocation_index) lid: u32) {
  stage_store(Stage(src[4u * lid], src[4u * lid + 1u], src[4u * lid + 2u], src[4u * lid + 3u]), 1u, lid);
  workgroupBarrier();
  let n = 2u * BT * SROWW;
  for (var i = lid; i < n; i += NSG * SG) {
    out[i] = d_a[i / BLKW][i % BLKW];
    out[n + i] = d_w[i / BLKW][i % BLKW];
  }
}`,
    });
    // The int8_gemm_tc.wgsl kernels' tiles (TC_KERNELS: 64 on 4 subgroups, 128 on 8) that this device takes (tcKernelRefusal), each once.
    const onDevice = (Object.keys(TC_KERNELS) as TcKernel[]).filter((k) => TC_KERNELS[k].module === 'tc' && tcKernelRefusal(ctx as GpuContext, { subgroupSize: SG }, k) === null);
    const tiles = [...new Map(onDevice.map((k) => [TC_KERNELS[k].tileM, { BT: TC_KERNELS[k].tileM, NSG: TC_KERNELS[k].subgroups }])).values()];
    expect(tiles.length, 'a tile this adapter can stage').toBeGreaterThan(0);
    for (const { BT, NSG } of tiles) {
      const threads = NSG * SG;
      const values = new Int32Array(threads * 16);
      for (let i = 0; i < values.length; i++) values[i] = ((i * 2654435761 + seed) | 0) || 1;
      const src = device.createBuffer({ label: 'Test.src', size: values.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(src, 0, values);
      const n = 2 * BT * SROWW;
      const out = storageBuffer(device, 'Test.out', 2 * n * 4);
      try {
        const pipeline = await withErrorScopes(device, 'int8 stage', async () => device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main', constants: { BT, NSG, SG } } }));
        const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: out } }] });
        await withErrorScopes(device, 'int8 stage', async () => {
          const encoder = device.createCommandEncoder();
          const pass = encoder.beginComputePass();
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, group);
          pass.dispatchWorkgroups(1);
          pass.end();
          device.queue.submit([encoder.finish()]);
        });
        const got = new Int32Array(await readBuffer(device, out, out.size));
        // Invocation lid's stage: a0 (t = lid), a1 (t = lid + threads) of operand a, w0, w1 of w; buffer 1.
        const want = new Int32Array(2 * n);
        for (let lid = 0; lid < threads; lid++) {
          for (const [k, operand, t] of [[0, 0, lid], [1, 0, lid + threads], [2, 1, lid], [3, 1, lid + threads]] as const) {
            const o = operand * n + BT * SROWW + Math.floor(t / KV) * SROWW + (t % KV) * 4;
            for (let j = 0; j < 4; j++) want[o + j] = values[(lid * 4 + k) * 4 + j] as number;
          }
        }
        expect(got, `tile ${BT}`).toEqual(want);
      } finally {
        src.destroy();
        out.destroy();
      }
    }
  });

  it('refuses the gated norm without its buffers, a rotation or an fp32 y of its own rows', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const b = (label: string, floats: number) => storageBuffer(device, label, floats * 4);
    const [y, z, g, codes, scales] = [b('y', 4 * 64), b('z', 4 * 64), b('g', 64), b('codes', 64 * 16), b('scales', 64)];
    const gated = { zOffset: 0, zStride: 64, eps: 1e-5 };
    try {
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, gated }, { x: y, codes, scales })).toThrow('Int8Gemm: the gated norm needs z and g');
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, gated }, { x: y, z, g, codes, scales })).toThrow(/folded into the rotating quantize only/);
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, xStride: 70, gated }, { x: y, z, g, codes, scales })).toThrow(/fp32 \[rows, cols\]/);
      expect(() => quantizeRowsI8(ctx!, { rows: 4, cols: 64, rotate: 64, gated: { ...gated, zStride: 80 } }, { x: y, z, g, codes, scales })).toThrow(/z \(z\) holds/);
    } finally {
      for (const x of [y, z, g, codes, scales]) x.destroy();
    }
  });

  it('refuses a Hadamard block that is not a power of two from 4 to 256 dividing the columns', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const x = storageBuffer(device, 'x', 64 * 96 * 4);
    const codes = storageBuffer(device, 'codes', 64 * int8Words(96) * 4);
    const scales = storageBuffer(device, 'scales', 64 * 4);
    try {
      for (const rotate of [2, 24, 64, 512]) {
        expect(() => quantizeRowsI8(ctx!, { rows: 10, cols: 96, rotate }, { x, codes, scales })).toThrow(`Int8Gemm: a Hadamard block must be a power of two from 4 to 256 dividing the 96 columns, got ${rotate}`);
      }
      expect(int8RotationBlock(2560)).toBe(256);
      expect(int8RotationBlock(48)).toBe(16);
      expect(int8RotationBlock(18)).toBe(0);
    } finally {
      for (const b of [x, codes, scales]) b.destroy();
    }
  });

  it('writes a strided view of Y, adds the bias and accumulates, on each variant', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const [M, N, K] = [21, 37, 70];
    const [yOffset, yStride] = [5, 44];
    const a = await quantize(ctx, randomF32(M * K, seed + 11, 1), M, K);
    const b = await quantize(ctx, randomF32(N * K, seed + 12, 0.03), N, K);
    const bias = randomF32(N, seed + 13, 0.5);
    const before = randomF32(yOffset + M * yStride, seed + 14, 1);
    const biasBuf = uploadF32(device, 'Test.bias', bias);
    const y = storageBuffer(device, 'Test.y', before.length * 4);
    const words = int8Words(K);
    const product = int8GemmRef(unpackCodes(a.words, M, K, words), a.s, unpackCodes(b.words, N, K, words), b.s, M, N, K);
    try {
      for (const { name: variant, ctx: kernelCtx, options } of kernels(ctx)) {
        for (const [accumulate, withBias] of [[false, true], [true, false], [true, true]] as const) {
          device.queue.writeBuffer(y, 0, before);
          const op = int8Gemm(kernelCtx, { m: M, n: N, k: K, yOffset, yStride, accumulate }, { qa: a.codes, sa: a.scales, qw: b.codes, sw: b.scales, y, bias: withBias ? biasBuf : null }, options);
          await withErrorScopes(device, variant, () => submitDispatches(device, 'Test', [op]));
          op.destroy();
          const got = await readF32(device, y, before.length);
          for (let i = 0; i < before.length; i++) {
            const r = i - yOffset;
            const m = Math.floor(r / yStride);
            const n = r - m * yStride;
            const inside = r >= 0 && m < M && n < N;
            const want = inside ? (accumulate ? (before[i] as number) : 0) + (product[m * N + n] as number) + (withBias ? (bias[n] as number) : 0) : (before[i] as number);
            expect(Math.abs((got[i] as number) - want), `${variant} accumulate=${accumulate} bias=${withBias} element ${i}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want)));
          }
        }
      }
    } finally {
      for (const buffer of [a.codes, a.scales, b.codes, b.scales, biasBuf, y]) buffer.destroy();
    }
  });

  it('splits K over workgroups (the partials, then the reduce): Y exactly as unsplit, on each variant, with the bias, accumulate and a strided view', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    // K = 300: 5 stages of 64 bytes; 2 splits take 3 + 2, 3 take 2 + 2 + 1, 9 are clamped to 5.
    const [M, N, K] = [21, 37, 300];
    const [yOffset, yStride] = [3, 40];
    const a = await quantize(ctx, randomF32(M * K, seed + 21, 1), M, K);
    const b = await quantize(ctx, randomF32(N * K, seed + 22, 0.03), N, K);
    const biasBuf = uploadF32(device, 'Test.bias', randomF32(N, seed + 23, 0.5));
    const before = randomF32(yOffset + M * yStride, seed + 24, 1);
    const y = storageBuffer(device, 'Test.y', before.length * 4);
    const big = storageBuffer(device, 'Test.scratch', 5 * M * N * 4);
    const small = storageBuffer(device, 'Test.smallScratch', 2 * M * N * 4 - 4);
    const operands = { qa: a.codes, sa: a.scales, qw: b.codes, sw: b.scales, y, bias: biasBuf };
    const run = async (options: Parameters<typeof int8Gemm>[3], what: string, on: GpuContext = ctx!) => {
      device.queue.writeBuffer(y, 0, before);
      const op = int8Gemm(on, { m: M, n: N, k: K, yOffset, yStride, accumulate: true }, operands, options);
      await withErrorScopes(device, what, () => submitDispatches(device, 'Test', [op]));
      op.destroy();
      return { y: await readF32(device, y, before.length), parts: op.parts?.map((p) => p.name) ?? null };
    };
    try {
      for (const { name: variant, ctx: kernelCtx, options } of kernels(ctx)) {
        const whole = await run(options, `${variant} unsplit`, kernelCtx);
        expect(whole.parts, 'one kernel').toBeNull();
        for (const splits of [2, 3, 9]) {
          const split = await run({ ...options, splits }, `${variant} ${splits} splits`, kernelCtx);
          expect(split.parts).toEqual([variant === 'portable' ? 'gemm' : expect.stringMatching(/^main/), 'reduce']);
          expect(Array.from(split.y), `${variant}, ${splits} splits`).toEqual(Array.from(whole.y));
          const inScratch = await run({ ...options, splits, scratch: big }, `${variant} ${splits} splits, given scratch`, kernelCtx);
          expect(Array.from(inScratch.y), `${variant}, ${splits} splits in the given scratch`).toEqual(Array.from(whole.y));
        }
        // A given scratch too small for the partials: not split, same Y.
        const refused = await run({ ...options, splits: 2, scratch: small }, `${variant} scratch too small`, kernelCtx);
        expect(refused.parts).toBeNull();
        expect(Array.from(refused.y)).toEqual(Array.from(whole.y));
      }
      expect(() => int8Gemm(ctx!, { m: M, n: N, k: K }, { ...operands, y: big }, { variant: 'portable', splits: 2, scratch: big })).toThrow(/Int8Gemm: the split-K scratch \(Test.scratch\) is also an operand/);
    } finally {
      for (const buffer of [a.codes, a.scales, b.codes, b.scales, biasBuf, y, big, small]) buffer.destroy();
    }
  });

  it('refuses the tensor cores where the device has none, and buffers too small, naming them', async (test) => {
    if (!ctx) return test.skip(skipReason);
    const { device } = ctx;
    const words = int8Words(40);
    const buf = (label: string, floats: number) => storageBuffer(device, label, floats * 4);
    const b = { qa: buf('qa', 64 * words), sa: buf('sa', 64), qw: buf('qw', 64 * words), sw: buf('sw', 64), y: buf('y', 10 * 12) };
    try {
      if (!int8TensorCores(ctx)) expect(() => int8Gemm(ctx!, { m: 10, n: 12, k: 40 }, b, { variant: 'tensor-cores' })).toThrow(/Int8Gemm: this device offers no int8 tensor cores/);
      expect(() => int8Gemm(ctx!, { m: 10, n: 12, k: 40 }, { ...b, y: buf('tiny', 119) }, { variant: 'portable' })).toThrow(/Int8Gemm: y \(tiny\) holds 476 bytes, needs 480/);
      expect(() => int8Gemm(ctx!, { m: 65, n: 12, k: 40 }, b, { variant: 'portable' })).toThrow(/Int8Gemm: qa \(qa\) holds/);
      const x = buf('x', 10 * 40);
      try {
        expect(() => quantizeRowsI8(ctx!, { rows: 10, cols: 40 }, { x, codes: b.qa, scales: b.qa })).toThrow(/Int8Gemm: scales and codes are the same buffer/);
      } finally {
        x.destroy();
      }
    } finally {
      for (const buffer of Object.values(b)) buffer.destroy();
    }
  });
});
