/**
 * Streams a model's weights from their files into GPU buffers with bounded memory: each tensor
 * is read in chunks (never the whole file, nor a whole large tensor, in the JS heap), kept in its
 * file's encoding when the kernels read that (F16, BF16, ggml blocks: the bytes go to the GPU as
 * they are) or converted on the way (to fp32, or to packed f16 for the big matrices with
 * `weightFormat: 'f16'`): memory.ts `tensorWeightFormat` decides. Written with queue.writeBuffer.
 * Reports progress in bytes, and stops cleanly (freeing what it made) when cancelled.
 */
import { tensorDecoder } from '../formats/decode.js';
import type { ModelInspection } from './inspection.js';
import type { ModelFiles } from '../formats/model-files.js';
import type { ByteSource } from '../formats/source.js';
import type { GpuContext } from '../gpu/context.js';
import { allocateOrFail, formatBytes, GpuError } from '../gpu/errors.js';
import { packF16 } from '../kernels/f16.js';
import { BLOCK_GROUP, groupBlocks, isBlockFormat, weightBytes, type WeightFormat } from '../kernels/weight-format.js';
import { weightFormats, weightParts, type WeightChoice, type WeightPart } from './memory.js';
import { checkMemoryPlan, planMemory, type TraceMemory } from './memory-plan.js';

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
  /** Name in the file → its GPU buffer (row-major, the file's shape), in the format `formats` gives. */
  buffers: Map<string, GPUBuffer>;
  /**
   * Matrices larger than one binding (only the embedding and an untied LM head may be: memory.ts
   * weightParts), as row ranges of one buffer each; such a name is in `parts`, not in `buffers`.
   */
  parts?: ReadonlyMap<string, readonly WeightPart[]>;
  /** How each buffer is stored (app/kernels/weight-format.ts); a name not in it is fp32. */
  formats?: ReadonlyMap<string, WeightFormat>;
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
   * The weights on the GPU (memory.ts tensorWeightFormat): 'auto' keeps the big matrices in the
   * checkpoint's own precision (F16, BF16, ggml blocks); 'f16' stores the big matrices (in_proj,
   * x_proj, dt_proj, out_proj, the embedding and an untied lm_head) as packed halves, rounding to
   * nearest; 'f32' expands everything. Norms, conv, A, D and all arithmetic stay fp32. Default 'f32'.
   */
  weightFormat?: WeightChoice;
  /**
   * Bytes of GPU memory the model may use in all (weights, activations for `maxTokens`, one
   * sequence: app/model/memory.ts); more is refused before anything is allocated. Default: no cap
   * (WebGPU does not tell how much memory a device has), only the per-buffer limits.
   */
  gpuMemoryBudget?: number;
  /** Tokens per prefill chunk the model will be built for (buildModel's maxTokens), for the budget. Default 256. */
  maxTokens?: number;
  /**
   * Largest weight buffer in bytes (default: the device's maxStorageBufferBindingSize and
   * maxBufferSize): the embedding or LM head larger than this is split into row ranges (tests).
   */
  bindingLimit?: number;
  /** The trace buffers to plan room for (app/analysis/trace-memory.ts traceMemory); default none. */
  trace?: TraceMemory | null;
  /** The model's name in messages (default its first weight file). */
  name?: string;
}

export async function loadWeights(ctx: GpuContext, model: ModelFiles, inspection: ModelInspection, options: LoadOptions = {}): Promise<LoadedWeights> {
  const { device } = ctx;
  const chunkBytes = Math.max(8, Math.floor((options.chunkBytes ?? 8 * 1024 * 1024) / 8) * 8);
  const tensors = [...inspection.tensors.values()];
  const choice = options.weightFormat ?? 'f32';
  const limits = options.bindingLimit !== undefined ? { maxStorageBufferBindingSize: options.bindingLimit, maxBufferSize: options.bindingLimit } : ctx.adapter.limits;
  // The one check before anything is allocated: the memory plan (app/model/memory-plan.ts).
  checkMemoryPlan(
    planMemory(inspection, {
      weights: choice,
      maxTokens: options.maxTokens ?? 256,
      adapter: { ...ctx.adapter, limits },
      trace: options.trace ?? null,
      ...(options.gpuMemoryBudget !== undefined ? { budget: options.gpuMemoryBudget } : {}),
      ...(options.name !== undefined ? { model: options.name } : {}),
    }),
    'weights',
  );
  const formats = weightFormats(choice, inspection);
  const bytesTotal = tensors.reduce((s, t) => s + t.byteLength, 0);
  const buffers = new Map<string, GPUBuffer>();
  const parts = new Map<string, WeightPart[]>();
  const bindingLimit = options.bindingLimit ?? Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
  const shapes = new Map<string, number[]>();
  const sources = new Map<string, ByteSource>();
  const started = performance.now();
  let bytesDone = 0;
  let bytesOnGpu = 0;
  const destroy = () => {
    for (const b of buffers.values()) b.destroy();
    for (const list of parts.values()) for (const part of list) part.buffer.destroy();
    buffers.clear();
    parts.clear();
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
      const format = formats.get(t.name) ?? 'f32';
      // As stored in the file (the bytes go as they are), packed into halves, or decoded to fp32.
      const mode = format === 'f32' ? (decoder.isF32 ? 'raw' : 'f32') : format === 'f16' && !decoder.isRaw('f16') ? 'pack-f16' : 'raw';
      if (mode === 'raw' && format !== 'f32' && !decoder.isRaw(format)) throw new Error(`${t.file}: tensor "${t.name}" cannot be stored as ${format}`);
      const what = `${t.file}: tensor "${t.name}"`;
      // One buffer, or row ranges of one each for a matrix larger than one binding (memory.ts weightParts).
      const ranges = weightParts(t.name, t.shape, format, bindingLimit, inspection.embeddingName) ?? [{ firstRow: 0, rows: 1 }];
      const split = ranges.length > 1;
      const rowElements = split ? (t.shape[1] as number) : count; // one "row" of the whole tensor when not split
      const made: WeightPart[] = [];
      // writeBuffer may allocate staging memory: each write in a scope of its own (no await inside), checked per tensor.
      const writes: Promise<GPUError | null>[] = [];
      let size = 0;
      shapes.set(t.name, t.shape);
      for (const [p, range] of ranges.entries()) {
        const partSize = weightBytes(split ? range.rows * rowElements : count, format);
        const label = split ? `Weights.${t.name}#${p}` : `Weights.${t.name}`;
        const buffer = await allocateOrFail(
          device,
          split ? `${what} (rows ${range.firstRow}..${range.firstRow + range.rows - 1})` : what,
          partSize,
          () => device.createBuffer({ label, size: partSize, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC }),
          (b) => b.destroy(),
        );
        made.push({ buffer, firstRow: range.firstRow, rows: range.rows });
        if (ranges.length === 1) buffers.set(t.name, buffer);
        else parts.set(t.name, made);
        size += partSize;
        bytesOnGpu += buffer.size;
        const write = (at: number, data: ArrayBufferLike, offset: number, bytes: number) => {
          device.pushErrorScope('out-of-memory');
          device.queue.writeBuffer(buffer, at, data, offset, bytes);
          writes.push(device.popErrorScope());
        };
        // The part's blocks in the file (rows are whole blocks: memory.ts tensorWeightFormat).
        const begin = split ? (range.firstRow * rowElements) / decoder.blockElements : 0;
        const end = split ? ((range.firstRow + range.rows) * rowElements) / decoder.blockElements : blocks;
        let blocksPerChunk = Math.max(1, Math.floor(chunkBytes / decoder.blockBytes));
        // Every chunk but the last must fill whole words: an even number of halves, of odd-sized
        // blocks; whole groups of blocks for the block formats (weight-format.ts groupBlocks).
        const grouped = mode === 'raw' && isBlockFormat(format);
        const quantum = mode === 'pack-f16' ? (decoder.blockElements % 2 === 1 ? 2 : 1) : grouped ? BLOCK_GROUP : mode === 'raw' ? 4 / gcd(4, decoder.blockBytes) : 1;
        blocksPerChunk = Math.max(quantum, blocksPerChunk - (blocksPerChunk % quantum));
        for (let first = begin; first < end; first += blocksPerChunk) {
          if (options.signal?.aborted) throw new LoadCancelled();
          const n = Math.min(blocksPerChunk, end - first);
          const raw = await source.read(t.offset + first * decoder.blockBytes, n * decoder.blockBytes);
          const local = first - begin; // blocks into this part's buffer
          const at = local * decoder.blockElements * 4;
          if (mode === 'pack-f16') {
            const words = packF16(decoder.decode(raw));
            write(at / 2, words.buffer, words.byteOffset, words.byteLength);
          } else if (grouped) {
            const data = groupBlocks(format, raw);
            write((local / BLOCK_GROUP) * BLOCK_GROUP * decoder.blockBytes, data.buffer, data.byteOffset, data.byteLength);
          } else if (mode === 'raw') {
            // Already the storage format (WebGPU is little-endian everywhere): no conversion; a last
            // chunk that ends inside a word is padded with zeros (the buffer is padded anyway).
            const data = raw.byteLength % 4 === 0 ? raw : padTo4(raw);
            write(local * decoder.blockBytes, data.buffer, data.byteOffset, data.byteLength);
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
      }
      const oom = (await Promise.all(writes)).find((e) => e !== null);
      if (oom) throw new GpuError(`${what}: out of GPU memory writing ${formatBytes(size)} (${oom.message})`, 'out-of-memory');
    }
    await device.queue.onSubmittedWorkDone();
  } catch (error) {
    destroy();
    throw error;
  }
  return { buffers, ...(parts.size > 0 ? { parts } : {}), formats, shapes, bytesOnGpu, destroy };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  out.set(bytes);
  return out;
}
