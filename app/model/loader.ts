/**
 * Streams a model's weights from their files into GPU buffers with bounded memory: each tensor
 * is read in chunks (never the whole file, nor a whole large tensor, in the JS heap), converted
 * to the engine's storage type on the way (fp32, or packed f16 for the big matrices with
 * `weightFormat: 'f16'`), and written with queue.writeBuffer. Reports
 * progress in bytes, and stops cleanly (freeing what it made) when cancelled.
 */
import { tensorDecoder } from '../formats/decode.js';
import type { ModelInspection } from './inspection.js';
import type { ModelFiles } from '../formats/model-files.js';
import type { ByteSource } from '../formats/source.js';
import type { GpuContext } from '../gpu/context.js';
import { allocateOrFail, formatBytes, GpuError } from '../gpu/errors.js';
import { packF16, weightBytes, type WeightFormat } from '../kernels/f16.js';
import { checkGpuMemory, gpuMemoryNeed, storedAsF16 } from './memory.js';

export { storedAsF16 } from './memory.js';

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
  /** Name in the file → its GPU buffer (row-major, the file's shape): fp32, or packed f16 for the names in `f16`. */
  buffers: Map<string, GPUBuffer>;
  /** Names stored as packed halves (app/kernels/f16.ts); absent or empty: every buffer is fp32. */
  f16?: ReadonlySet<string>;
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
  /**
   * 'f16' stores the big matrices (in_proj, x_proj, dt_proj, out_proj, the embedding and an untied
   * lm_head: f16WeightNames) as packed halves, rounding to nearest; everything else, and all
   * arithmetic, stays fp32. Default 'f32'.
   */
  weightFormat?: WeightFormat;
  /**
   * Bytes of GPU memory the model may use in all (weights, activations for `maxTokens`, one
   * sequence: app/model/memory.ts); more is refused before anything is allocated. Default: no cap
   * (WebGPU does not tell how much memory a device has), only the per-buffer limits.
   */
  gpuMemoryBudget?: number;
  /** Tokens per prefill chunk the model will be built for (buildModel's maxTokens), for the budget. Default 256. */
  maxTokens?: number;
}

export async function loadWeights(ctx: GpuContext, model: ModelFiles, inspection: ModelInspection, options: LoadOptions = {}): Promise<LoadedWeights> {
  const { device } = ctx;
  const chunkBytes = Math.max(8, Math.floor((options.chunkBytes ?? 8 * 1024 * 1024) / 8) * 8);
  const tensors = [...inspection.tensors.values()];
  const need = gpuMemoryNeed(inspection, { maxTokens: options.maxTokens ?? 256, weightFormat: options.weightFormat ?? 'f32' });
  checkGpuMemory(inspection, need, ctx.adapter.limits, options.gpuMemoryBudget);
  const bytesTotal = tensors.reduce((s, t) => s + t.byteLength, 0);
  const buffers = new Map<string, GPUBuffer>();
  const f16 = new Set<string>();
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
      const half = options.weightFormat === 'f16' && storedAsF16(t.name, t.shape, inspection.embeddingName);
      if (half) f16.add(t.name);
      const size = weightBytes(count, half ? 'f16' : 'f32');
      const what = `${t.file}: tensor "${t.name}"`;
      const buffer = await allocateOrFail(
        device,
        what,
        size,
        () => device.createBuffer({ label: `Weights.${t.name}`, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }),
        (b) => b.destroy(),
      );
      buffers.set(t.name, buffer);
      // writeBuffer may allocate staging memory: each write in a scope of its own (no await inside), checked per tensor.
      const writes: Promise<GPUError | null>[] = [];
      const write = (at: number, data: ArrayBufferLike, offset: number, bytes: number) => {
        device.pushErrorScope('out-of-memory');
        device.queue.writeBuffer(buffer, at, data, offset, bytes);
        writes.push(device.popErrorScope());
      };
      shapes.set(t.name, t.shape);
      bytesOnGpu += buffer.size;
      let blocksPerChunk = Math.max(1, Math.floor(chunkBytes / decoder.blockBytes));
      // Packed halves: every chunk but the last must hold an even number of elements (whole words).
      if (half && (blocksPerChunk * decoder.blockElements) % 2 === 1) blocksPerChunk = blocksPerChunk === 1 ? 2 : blocksPerChunk - 1;
      for (let first = 0; first < blocks; first += blocksPerChunk) {
        if (options.signal?.aborted) throw new LoadCancelled();
        const n = Math.min(blocksPerChunk, blocks - first);
        const raw = await source.read(t.offset + first * decoder.blockBytes, n * decoder.blockBytes);
        const at = first * decoder.blockElements * 4;
        if (half) {
          const words = packF16(decoder.decode(raw));
          write(at / 2, words.buffer, words.byteOffset, words.byteLength);
        } else if (decoder.isF32) {
          // Already the storage type (WebGPU is little-endian everywhere): no conversion, no copy.
          write(at, raw.buffer, raw.byteOffset, raw.byteLength);
        } else {
          const f32 = decoder.decode(raw);
          write(at, f32.buffer, f32.byteOffset, f32.byteLength);
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
      const oom = (await Promise.all(writes)).find((e) => e !== null);
      if (oom) throw new GpuError(`${what}: out of GPU memory writing ${formatBytes(size)} (${oom.message})`, 'out-of-memory');
    }
    await device.queue.onSubmittedWorkDone();
  } catch (error) {
    destroy();
    throw error;
  }
  return { buffers, f16, shapes, bytesOnGpu, destroy };
}
