/**
 * Streams a model's weights from their files into GPU buffers with bounded memory: each tensor
 * is read in chunks (never the whole file, nor a whole large tensor, in the JS heap), converted
 * to the engine's storage type (fp32) on the way, and written with queue.writeBuffer. Reports
 * progress in bytes, and stops cleanly (freeing what it made) when cancelled.
 */
import { tensorDecoder } from '../formats/decode.js';
import type { ModelInspection } from '../formats/inspect.js';
import type { ModelFiles } from '../formats/model-files.js';
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

export async function loadWeights(ctx: GpuContext, model: ModelFiles, inspection: ModelInspection, options: LoadOptions = {}): Promise<LoadedWeights> {
  const { device } = ctx;
  const chunkBytes = Math.max(8, Math.floor((options.chunkBytes ?? 8 * 1024 * 1024) / 8) * 8);
  const tensors = [...inspection.tensors.values()];
  const limits = ctx.adapter.limits;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 4;
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
      const decoder = tensorDecoder(t);
      const count = t.shape.reduce((a, b) => a * b, 1);
      const blocks = t.byteLength / decoder.blockBytes;
      const buffer = device.createBuffer({
        label: `Weights.${t.name}`,
        size: Math.max(4, count * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      });
      buffers.set(t.name, buffer);
      shapes.set(t.name, t.shape);
      bytesOnGpu += buffer.size;
      const blocksPerChunk = Math.max(1, Math.floor(chunkBytes / decoder.blockBytes));
      for (let first = 0; first < blocks; first += blocksPerChunk) {
        if (options.signal?.aborted) throw new LoadCancelled();
        const n = Math.min(blocksPerChunk, blocks - first);
        const raw = await source.read(t.offset + first * decoder.blockBytes, n * decoder.blockBytes);
        const at = first * decoder.blockElements * 4;
        if (decoder.isF32) {
          // Already the storage type (WebGPU is little-endian everywhere): no conversion, no copy.
          device.queue.writeBuffer(buffer, at, raw.buffer, raw.byteOffset, raw.byteLength);
        } else {
          const f32 = decoder.decode(raw);
          device.queue.writeBuffer(buffer, at, f32.buffer, f32.byteOffset, f32.byteLength);
        }
        bytesDone += n * decoder.blockBytes;
        const seconds = (performance.now() - started) / 1000;
        options.onProgress?.({
          bytesDone,
          bytesTotal,
          tensorsDone: index + (first + n >= blocks ? 1 : 0),
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
