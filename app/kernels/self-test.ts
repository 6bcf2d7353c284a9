/**
 * A real kernel run against its CPU reference on random data, usable from the UI and from tests
 * to prove that the GPU path works end to end on this adapter.
 */
import { readF32, storageBuffer, uploadF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { withErrorScopes } from '../gpu/errors.js';
import { submitDispatches } from './dispatch.js';
import { residualRmsNorm } from './residual-rmsnorm.js';
import { residualRmsNormRef } from './residual-rmsnorm.ref.js';
import { seededRandom } from '../random.js';

/** Relative error ‖a − b‖ / ‖b‖ (b is the reference); NaN anywhere gives Infinity. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError(`length ${actual.length} ≠ ${expected.length}`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const b = expected[i] as number;
    if (!Number.isFinite(a)) return Infinity;
    diff += (a - b) * (a - b);
    norm += b * b;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

/** Uniform random numbers in [-scale, scale) from a seeded generator (mulberry32). */
export function randomF32(count: number, seed: number, scale = 1): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: count }, () => (next() * 2 - 1) * scale);
}

/** What the GPU self-check reports (the engine's `selfTest` result). */
export interface SelfTestResult {
  op: string;
  rows: number;
  cols: number;
  maxRelativeError: number;
  tolerance: number;
  passed: boolean;
  milliseconds: number;
}

export async function runResidualRmsNormCheck(ctx: GpuContext, rows: number, cols: number, seed = Date.now()): Promise<SelfTestResult> {
  const { device } = ctx;
  const tolerance = 1e-4;
  const eps = 1e-5;
  const hidden = randomF32(rows * cols, seed, 2);
  const residualIn = randomF32(rows * cols, seed + 1, 2);
  const weight = randomF32(cols, seed + 2, 1.5);
  const poison = new Float32Array(rows * cols).fill(Number.NaN);
  const started = performance.now();
  const buffers = {
    hidden: uploadF32(device, 'SelfTest.hidden', hidden),
    residual: uploadF32(device, 'SelfTest.residual', residualIn),
    weight: uploadF32(device, 'SelfTest.weight', weight),
    output: storageBuffer(device, 'SelfTest.output', rows * cols * 4),
  };
  device.queue.writeBuffer(buffers.output, 0, poison);
  try {
    const dispatch = await withErrorScopes(device, 'ResidualRmsNorm self-test', () => {
      const d = residualRmsNorm(ctx, { rows, cols, eps, hasResidual: true }, buffers, 'SelfTest.rmsnorm');
      submitDispatches(device, 'SelfTest', [d]);
      return d;
    });
    const [output, residual] = await Promise.all([readF32(device, buffers.output), readF32(device, buffers.residual)]);
    dispatch.destroy();
    const ref = residualRmsNormRef(hidden, residualIn, weight, rows, cols, eps);
    const maxRelativeError = Math.max(relativeError(output, ref.output), relativeError(residual, ref.residual));
    return {
      op: 'ResidualRmsNorm',
      rows,
      cols,
      maxRelativeError,
      tolerance,
      passed: maxRelativeError <= tolerance,
      milliseconds: performance.now() - started,
    };
  } finally {
    for (const b of Object.values(buffers)) b.destroy();
  }
}
