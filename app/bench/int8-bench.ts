/**
 * `bench --int8-gemm` (issue 19 item 1): the int8 matrix product (app/kernels/int8-gemm.ts) on this
 * device — correctness of each variant it has, whole and with K split, against the CPU reference on odd sizes, then the
 * time of mamba-2.8b's in_proj and out_proj over `tokens` tokens: the activations' quantization, the
 * int8 product, and the studio's fp32 matmul on the same shapes (its prefill today), in one run.
 * Random data made on the CPU; times are wall clock over `repeats` dispatches in one submit.
 */
import { readBuffer, readF32, storageBuffer, uploadF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { submitDispatches, type Dispatch } from '../kernels/dispatch.js';
import { defaultTcKernel, int8Gemm, int8RotationBlock, int8TensorCores, int8Words, quantizeRowsI8, roundUp, tcKernelRefusal, type TcKernel } from '../kernels/int8-gemm.js';
import { int8GemmRef, unpackCodes } from '../kernels/int8-gemm.ref.js';
import { matmul } from '../kernels/matmul.js';
import { randomF32 } from '../kernels/self-test.js';

/** The kernels measured: the tensor cores' kernels (int8-gemm.ts TcKernel) and the portable one. */
type Variant = 'tensor-cores' | 'tensor-cores-double' | 'tensor-cores-wide' | 'tensor-cores-wide-deep' | 'tensor-cores-quad' | 'tensor-cores-big' | 'portable';
const OPTIONS: Record<Variant, { variant: 'tensor-cores' | 'portable'; tcKernel?: TcKernel }> = {
  'tensor-cores': { variant: 'tensor-cores', tcKernel: 'single' },
  'tensor-cores-double': { variant: 'tensor-cores', tcKernel: 'double' },
  'tensor-cores-wide': { variant: 'tensor-cores', tcKernel: 'wide' },
  'tensor-cores-wide-deep': { variant: 'tensor-cores', tcKernel: 'wide-deep' },
  'tensor-cores-quad': { variant: 'tensor-cores', tcKernel: 'quad' },
  'tensor-cores-big': { variant: 'tensor-cores', tcKernel: 'big' },
  portable: { variant: 'portable' },
};
/** Odd sizes checked against the CPU: inside one tile, and across several tiles of either kernel's size. */
const CHECKS: [number, number, number][] = [
  [77, 150, 333],
  [301, 397, 333],
];

export interface Int8GemmBench {
  tensor_cores: boolean;
  /** The tensor-core kernel the model's int8 products run here (defaultTcKernel), or null. */
  default_tc_kernel: TcKernel | null;
  /** Largest |GPU − reference| / |reference| over odd-sized products (CHECKS: key `variant m×n×k`), per variant (the same codes: exact sums). */
  correctness: Record<string, { m: number; n: number; k: number; max_rel_err: number; pass: boolean }>;
  /** Per shape: ms per call and TOPS (2·M·N·K / time) of each part. */
  speed: { shape: string; m: number; n: number; k: number; quantize_ms: number; quantize_rotated_ms: number; int8_ms: Record<string, number>; int8_tops: Record<string, number>; fp32_matmul_ms: number; fp32_matmul_tflops: number }[];
}

/** ms per call: the best of 3 submits of `repeats` calls each, after a warm-up submit (wall clock: clocks ramp, other work interferes). */
async function timeMs(ctx: GpuContext, ops: Dispatch[], repeats: number): Promise<number> {
  submitDispatches(ctx.device, 'Int8Bench.warmup', Array.from({ length: repeats }, () => ops).flat());
  await ctx.device.queue.onSubmittedWorkDone();
  let best = Infinity;
  for (let trial = 0; trial < 3; trial++) {
    const t = performance.now();
    submitDispatches(ctx.device, 'Int8Bench', Array.from({ length: repeats }, () => ops).flat());
    await ctx.device.queue.onSubmittedWorkDone();
    best = Math.min(best, (performance.now() - t) / repeats);
  }
  return best;
}

export async function benchInt8Gemm(ctx: GpuContext, options: { repeats: number; tokens: number }, log: (line: string) => void): Promise<Int8GemmBench> {
  const { device } = ctx;
  const tc = int8TensorCores(ctx);
  const variants = (Object.keys(OPTIONS) as Variant[]).filter((v) => {
    const kernel = OPTIONS[v].tcKernel;
    return kernel === undefined || (tc !== null && tcKernelRefusal(ctx, tc, kernel) === null);
  });
  const defaultKernel = tc ? defaultTcKernel(ctx, tc) : null;
  log(`int8 tensor cores: ${tc ? `yes (subgroups of ${tc.subgroupSize}; default kernel ${defaultKernel})` : 'no'}`);
  const owned: GPUBuffer[] = [];
  const buffer = (label: string, bytes: number) => {
    const b = storageBuffer(device, label, bytes);
    owned.push(b);
    return b;
  };
  const quantized = (label: string, x: GPUBuffer, rows: number, cols: number) => {
    const codes = buffer(`${label}.codes`, roundUp(rows) * int8Words(cols) * 4);
    const scales = buffer(`${label}.scales`, roundUp(rows) * 4);
    return { codes, scales, op: quantizeRowsI8(ctx, { rows, cols }, { x, codes, scales }, `${label}.quantize`) };
  };
  try {
    const correctness: Int8GemmBench['correctness'] = {};
    for (const [M, N, K] of CHECKS) {
      const xa = uploadF32(device, 'Int8Bench.x', randomF32(M * K, 1, 1));
      const xw = uploadF32(device, 'Int8Bench.w', randomF32(N * K, 2, 0.02));
      owned.push(xa, xw);
      const a = quantized('Int8Bench.a', xa, M, K);
      const w = quantized('Int8Bench.w', xw, N, K);
      submitDispatches(device, 'Int8Bench.quantize', [a.op, w.op]);
      const words = int8Words(K);
      const qa = unpackCodes(new Int32Array(await readBuffer(device, a.codes, a.codes.size)), M, K, words);
      const qw = unpackCodes(new Int32Array(await readBuffer(device, w.codes, w.codes.size)), N, K, words);
      const want = int8GemmRef(qa, await readF32(device, a.scales, M), qw, await readF32(device, w.scales, N), M, N, K);
      const y = buffer('Int8Bench.y', M * N * 4);
      // Each variant whole, and with K split 3 ways (K = 333: 6 stages of 64 bytes, 2 a split; the partials, then the reduce).
      for (const variant of variants) {
        for (const splits of [1, 3]) {
          device.queue.writeBuffer(y, 0, new Float32Array(M * N).fill(Number.NaN));
          const op = int8Gemm(ctx, { m: M, n: N, k: K }, { qa: a.codes, sa: a.scales, qw: w.codes, sw: w.scales, y }, { ...OPTIONS[variant], splits });
          submitDispatches(device, 'Int8Bench.check', [op]);
          const got = await readF32(device, y, M * N);
          op.destroy();
          let worst = 0;
          for (let i = 0; i < M * N; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (want[i] as number)) / Math.max(Math.abs(want[i] as number), 1e-30));
          const pass = Number.isFinite(worst) && worst <= 1e-6;
          const name = `${variant}${splits > 1 ? ` split ${splits}` : ''}`;
          correctness[`${name} ${M}×${N}×${K}`] = { m: M, n: N, k: K, max_rel_err: worst, pass };
          log(`correctness ${name} (${M} × ${N} × ${K}): max relative error ${worst.toExponential(2)} → ${pass ? 'PASS' : 'FAIL'}`);
        }
      }
      for (const q of [a, w]) q.op.destroy();
    }
    const speed: Int8GemmBench['speed'] = [];
    const M = options.tokens;
    for (const [shape, N, K] of [['mamba-2.8b in_proj', 10240, 2560], ['mamba-2.8b out_proj', 2560, 5120]] as const) {
      const x = buffer('Int8Bench.sx', M * K * 4);
      const weight = uploadF32(device, 'Int8Bench.sw', randomF32(N * K, 3, 0.02));
      owned.push(weight);
      device.queue.writeBuffer(x, 0, randomF32(M * K, 4, 1));
      const y = buffer('Int8Bench.sy', M * N * 4);
      const a = quantized('Int8Bench.sa', x, M, K);
      const w = quantized('Int8Bench.sw', weight, N, K);
      submitDispatches(device, 'Int8Bench.quantizeWeights', [w.op]);
      const flops = 2 * M * N * K;
      const quantizeMs = await timeMs(ctx, [a.op], options.repeats);
      const rotated = quantizeRowsI8(ctx, { rows: M, cols: K, rotate: int8RotationBlock(K) }, { x, codes: a.codes, scales: a.scales }, 'Int8Bench.quantizeRotated');
      const quantizeRotatedMs = await timeMs(ctx, [rotated], options.repeats);
      rotated.destroy();
      const int8Ms: Record<string, number> = {};
      const int8Tops: Record<string, number> = {};
      for (const variant of variants) {
        const op = int8Gemm(ctx, { m: M, n: N, k: K }, { qa: a.codes, sa: a.scales, qw: w.codes, sw: w.scales, y }, OPTIONS[variant]);
        int8Ms[variant] = await timeMs(ctx, [op], variant === 'portable' ? 2 : options.repeats);
        int8Tops[variant] = flops / ((int8Ms[variant] as number) / 1e3) / 1e12;
        op.destroy();
      }
      const mm = matmul(ctx, { tokens: M, inFeatures: K, outFeatures: N, weightFormat: 'f32' }, { x, weight, y }, 'Int8Bench.fp32');
      const fp32Ms = await timeMs(ctx, [mm], options.repeats);
      mm.destroy();
      for (const q of [a, w]) q.op.destroy();
      const row = { shape, m: M, n: N, k: K, quantize_ms: quantizeMs, quantize_rotated_ms: quantizeRotatedMs, int8_ms: int8Ms, int8_tops: int8Tops, fp32_matmul_ms: fp32Ms, fp32_matmul_tflops: flops / (fp32Ms / 1e3) / 1e12 };
      speed.push(row);
      log(
        `${shape} (${M} × ${N} × ${K}): quantize ${quantizeMs.toFixed(3)} ms (rotated ${quantizeRotatedMs.toFixed(3)} ms); ` +
          variants.map((v) => `int8 ${v} ${(int8Ms[v] as number).toFixed(3)} ms (${(int8Tops[v] as number).toFixed(1)} TOPS)`).join(', ') +
          `; fp32 matmul ${fp32Ms.toFixed(3)} ms (${row.fp32_matmul_tflops.toFixed(1)} TFLOP/s)`,
      );
    }
    return { tensor_cores: tc !== null, default_tc_kernel: defaultKernel, correctness, speed };
  } finally {
    for (const b of owned) b.destroy();
  }
}
