/**
 * Op: seeded pseudo-random weights written on the GPU, in any storage format of weight-format.ts
 * (the bench's random models: a 7B shape never passes through the JS heap). Shader:
 * shaders/bench_random.wgsl.
 *
 * What a fill holds, for `scale` s:
 *   f32, f16, bf16  values uniform in [−s, s) (rounded to the format)
 *   'constant'      every value is s (fp32)
 *   'a_log'         log(1 + 15u), u uniform in [0, 1) (fp32): Mamba's A = −exp(A_log) in [−16, −1)
 *   ggml blocks     random codes with the block scales of `blockScales` below, so that the decoded
 *                   values lie in [−s, s] (Q4_0, Q5_0: [−s, 15/16·s]); the f16 scale fields are
 *                   finite positive halves (and Q4_1/Q5_1's m = −s)
 * A buffer larger than one binding is filled through several bindings (offsets aligned to the
 * device's minStorageBufferOffsetAlignment); every value depends only on the seed and its index.
 */
import code from '../../shaders/bench_random.wgsl?raw';
import { uniformBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import { f32ToF16Bits } from './f16.js';
import { bindGroupFor, bindGroupLayoutFor, checkCount } from './op-helpers.js';
import { BLOCK_GROUP, formatLayout, isBlockFormat, WEIGHT_FORMAT_CODE, weightBytes, type BlockFormat, type WeightFormat } from './weight-format.js';

const OP = 'RandomFill';
const WORKGROUP_SIZE = 64;
const MAX_GROUPS_X = 65535;

export type FillFormat = WeightFormat | 'constant' | 'a_log';

export interface RandomFillSpec {
  format: FillFormat;
  /** Values in the tensor (a whole number of blocks for a block format). */
  elements: number;
  scale: number;
  /** Any 32-bit integer; equal seeds give equal bytes. */
  seed: number;
  /** The largest binding to use (default: what the device binds); tests split a buffer with it. */
  windowBytes?: number;
}

/** The f16 fields of every block of a block format filled at `scale` (decoded |x| ≤ scale). */
export function blockScales(format: BlockFormat, scale: number): { d: number; second: number | null } {
  switch (format) {
    case 'q8_0':
      return { d: scale / 127, second: null }; // d·q, q in −127..127
    case 'q4_0':
      return { d: scale / 8, second: null }; // d·(q − 8), q in 0..15
    case 'q5_0':
      return { d: scale / 16, second: null }; // d·(q − 16), q in 0..31
    case 'q4_1':
      return { d: (2 * scale) / 15, second: -scale }; // d·q + m
    case 'q5_1':
      return { d: (2 * scale) / 31, second: -scale };
    case 'q4_k': {
      const d = scale / (7.5 * 63); // d·sc·q − dmin·sc = d·sc·(q − 7.5), sc ≤ 63
      return { d, second: 7.5 * d };
    }
    case 'q5_k': {
      const d = scale / (15.5 * 63);
      return { d, second: 15.5 * d };
    }
    case 'q6_k':
      return { d: scale / (32 * 127), second: null }; // d·sc·(q − 32), sc ≤ 127
  }
}

/** The 16 bits of the half nearest `x`; throws unless it is finite and (for d) positive. */
function halfBits(x: number, what: string, positive: boolean): number {
  const bits = f32ToF16Bits(x);
  if ((bits & 0x7c00) === 0x7c00 || (positive && (bits === 0 || bits & 0x8000))) {
    throw new RangeError(`${OP}: ${what} = ${x} is not a finite${positive ? ' positive' : ''} half (scale out of range)`);
  }
  return bits;
}

/** A 32-bit seed from a number and a name (FNV-1a), so each tensor of a model gets its own values. */
export function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Fills `buffer` (at least weightBytes(elements, format) bytes; fp32 for 'constant'/'a_log') and
 * submits the work. Returns once it is queued (await device.queue.onSubmittedWorkDone() to wait).
 */
export function randomFill(ctx: GpuContext, buffer: GPUBuffer, spec: RandomFillSpec, label = OP): void {
  const { device } = ctx;
  const { format, elements, scale } = spec;
  checkCount(OP, 'elements', elements, 1);
  if (!Number.isFinite(scale)) throw new RangeError(`${OP}: scale must be finite, got ${scale}`);
  const storage: WeightFormat = format === 'constant' || format === 'a_log' ? 'f32' : format;
  const bytes = weightBytes(elements, storage); // throws for a partial block
  if (buffer.size < bytes) throw new RangeError(`${OP}: ${label} (${buffer.label}) holds ${buffer.size} bytes, needs ${bytes}`);
  const block = isBlockFormat(storage);
  const { blockSize, typeSize } = formatLayout(storage);
  let h0 = 0;
  let h1 = 0;
  if (block) {
    const s = blockScales(storage, scale);
    h0 = halfBits(s.d, `${storage} d`, true);
    if (s.second !== null) h1 = halfBits(s.second, `${storage} ${storage.endsWith('_k') ? 'dmin' : 'm'}`, storage.endsWith('_k'));
  }
  const code32 = format === 'constant' ? 100 : format === 'a_log' ? 101 : WEIGHT_FORMAT_CODE[format];
  const unitBytes = block ? BLOCK_GROUP * typeSize : 4;
  const items = block ? elements / blockSize : elements;
  const valuesPerUnit = storage === 'f16' || storage === 'bf16' ? 2 : 1;
  const totalUnits = block ? Math.ceil(items / BLOCK_GROUP) : Math.ceil(elements / valuesPerUnit);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const step = (unitBytes * align) / gcd(unitBytes, align); // window offsets: whole units, aligned
  const maxBinding = Math.min(spec.windowBytes ?? Infinity, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const windowBytes = Math.floor(maxBinding / step) * step;
  if (windowBytes === 0) throw new RangeError(`${OP}: this device binds ${maxBinding} bytes, less than one aligned window of ${step}`);
  const unitsPerWindow = windowBytes / unitBytes;

  const layout = bindGroupLayoutFor(ctx, OP, ['uniform', 'storage']);
  const pipeline = ctx.pipelines.get({ op: OP, code, layout });
  const owned: GPUBuffer[] = [];
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  for (let first = 0; first < totalUnits; first += unitsPerWindow) {
    const units = Math.min(unitsPerWindow, totalUnits - first);
    const offset = first * unitBytes;
    const size = Math.min(buffer.size - offset, units * unitBytes); // multiples of 4 both
    const groups = Math.ceil(units / WORKGROUP_SIZE);
    const gx = Math.min(groups, MAX_GROUPS_X);
    const gy = Math.ceil(groups / gx);
    const params = uniformBuffer(device, `${label}.params`, 48);
    owned.push(params);
    const data = new ArrayBuffer(48);
    const u = new Uint32Array(data);
    u.set([code32, first, units, items, spec.seed >>> 0]);
    new Float32Array(data, 20, 1)[0] = scale;
    u.set([h0, h1, gx * WORKGROUP_SIZE, size / 4, typeSize, 0], 6);
    device.queue.writeBuffer(params, 0, data);
    const bindGroup = bindGroupFor(device, `${label}.bindGroup`, layout, [{ buffer: params }, { buffer, offset, size }]);
    const pass = encoder.beginComputePass({ label: `${label}.pass` });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
  }
  device.queue.submit([encoder.finish()]);
  // Destroying a buffer after submit is allowed: it is freed once the work using it completes.
  for (const b of owned) b.destroy();
}
