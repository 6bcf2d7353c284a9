/**
 * Streams a model's weights from their files into GPU buffers with bounded memory: each tensor
 * is read in chunks (never the whole file, nor a whole large tensor, in the JS heap), converted
 * to the engine's storage type (fp32) on the way, and written with queue.writeBuffer. Reports
 * progress in bytes, and stops cleanly (freeing what it made) when cancelled.
 */
import type { ModelInspection, TensorLocation } from '../formats/inspect.js';
import type { ModelFiles } from '../formats/model-files.js';
import { DTYPE_BYTES } from '../formats/safetensors.js';
import type { ByteSource } from '../formats/source.js';
import type { GpuContext } from '../gpu/context.js';
import { GpuError } from '../gpu/errors.js';

export interface LoadProgress {
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
  /** Average since the start, in MB/s (10^6 bytes). */
  mbPerSecond: number;
  /** The tensor being loaded. */
  tensor: string;
}

export interface LoadedWeights {
  /** Name in the file → its fp32 GPU buffer (row-major, the file's shape). */
  buffers: Map<string, GPUBuffer>;
  shapes: Map<string, number[]>;
  bytesOnGpu: number;
  destroy(): void;
}

export class LoadCancelled extends Error {
  constructor() {
    super('Loading was cancelled');
    this.name = 'LoadCancelled';
  }
}

export interface LoadOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Bytes read from the file per step (default 8 MiB); a multiple of 8. The caller owns (and closes) `model`'s files. */
  chunkBytes?: number;
}

/** Converts `count` elements of `dtype` at `bytes` to float32. */
export function decodeToF32(dtype: TensorLocation['dtype'], bytes: Uint8Array, out: Float32Array): void {
  const count = out.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      return;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer, out.byteOffset, count);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return;
    }
    default:
      throw new Error(`cannot convert ${dtype} to float32`);
  }
}

// f16 → f32 through a 65536-entry table, built once: the conversion is on the hot path of loading.
let HALF_TABLE: Float32Array | null = null;
function halfToFloat(h: number): number {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let x = 0; x < 65536; x++) {
      const sign = x & 0x8000 ? -1 : 1;
      const e = (x >> 10) & 0x1f;
      const f = x & 0x3ff;
      HALF_TABLE[x] = e === 0 ? sign * 2 ** -14 * (f / 1024) : e === 31 ? (f ? Number.NaN : sign * Infinity) : sign * 2 ** (e - 15) * (1 + f / 1024);
    }
  }
  return HALF_TABLE[h] as number;
}

export async function loadWeights(ctx: GpuContext, model: ModelFiles, inspection: ModelInspection, options: LoadOptions = {}): Promise<LoadedWeights> {
  const { device } = ctx;
  const chunkBytes = Math.max(8, Math.floor((options.chunkBytes ?? 8 * 1024 * 1024) / 8) * 8);
  const tensors = [...inspection.tensors.values()];
  const limits = ctx.adapter.limits;
  for (const t of tensors) {
    const bytes = (t.byteLength / DTYPE_BYTES[t.dtype]) * 4;
    const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    if (bytes > limit) {
      throw new GpuError(
        `${t.file}: tensor "${t.name}" needs ${(bytes / 2 ** 20).toFixed(0)} MiB as fp32, more than this GPU can bind in one buffer (${(limit / 2 ** 20).toFixed(0)} MiB)`,
        'out-of-memory',
      );
    }
  }
  const bytesTotal = tensors.reduce((s, t) => s + t.byteLength, 0);
  const buffers = new Map<string, GPUBuffer>();
  const shapes = new Map<string, number[]>();
  const sources = new Map<string, ByteSource>();
  const started = performance.now();
  let bytesDone = 0;
  let bytesOnGpu = 0;
  const destroy = () => {
    for (const b of buffers.values()) b.destroy();
    buffers.clear();
  };
  try {
    for (const [index, t] of tensors.entries()) {
      if (options.signal?.aborted) throw new LoadCancelled();
      let source = sources.get(t.file);
      if (!source) {
        source = await model.open(t.file);
        sources.set(t.file, source);
      }
      const elementBytes = DTYPE_BYTES[t.dtype];
      const count = t.byteLength / elementBytes;
      const buffer = device.createBuffer({
        label: `Weights.${t.name}`,
        size: Math.max(4, count * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      });
      buffers.set(t.name, buffer);
      shapes.set(t.name, t.shape);
      bytesOnGpu += buffer.size;
      const perChunk = Math.max(1, Math.floor(chunkBytes / elementBytes));
      for (let first = 0; first < count; first += perChunk) {
        if (options.signal?.aborted) throw new LoadCancelled();
        const n = Math.min(perChunk, count - first);
        const raw = await source.read(t.offset + first * elementBytes, n * elementBytes);
        if (t.dtype === 'F32') {
          // Already the storage type (WebGPU is little-endian everywhere): no conversion, no copy.
          device.queue.writeBuffer(buffer, first * 4, raw.buffer, raw.byteOffset, raw.byteLength);
        } else {
          const f32 = new Float32Array(n);
          decodeToF32(t.dtype, raw, f32);
          device.queue.writeBuffer(buffer, first * 4, f32.buffer, 0, n * 4);
        }
        bytesDone += n * elementBytes;
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({
          bytesDone,
          bytesTotal,
          tensorsDone: index + (first + n >= count ? 1 : 0),
          tensorsTotal: tensors.length,
          mbPerSecond: seconds > 0 ? bytesDone / 1e6 / seconds : 0,
          tensor: t.name,
        });
      }
    }
    await device.queue.onSubmittedWorkDone();
  } catch (error) {
    destroy();
    throw error;
  }
  return { buffers, shapes, bytesOnGpu, destroy };
}
