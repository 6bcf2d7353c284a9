import { summarizeAdapter, type AdapterSummary } from './adapter.js';
import { GpuError } from './errors.js';
import { PipelineCache } from './pipelines.js';

/** The int8 products' tensor-core kernels by name (what each is: app/kernels/int8-gemm.ts TcKernel). */
export type TcKernelName = 'single' | 'double' | 'wide' | 'wide-deep' | 'quad' | 'big';
/** The causal conv's kernels by name (app/kernels/causal-conv1d.ts DEFAULT_CONV_KERNEL). */
export const CONV_KERNEL_NAMES = ['loop', 'k4'] as const;
export type ConvKernelName = (typeof CONV_KERNEL_NAMES)[number];
/** Mamba-2's SSD chunk-kernel tiles by name (app/kernels/ssd.ts). */
export const SSD_TILE_NAMES = ['narrow', 'wide'] as const;
export type SsdTileName = (typeof SSD_TILE_NAMES)[number];
/** Mamba-1's prefill scan kernels by name (app/kernels/selective-scan.ts prefillScanKind). */
export const PREFILL_SCAN_KINDS = ['parallel', 'channel', 'serial'] as const;
export type PrefillScanKind = (typeof PREFILL_SCAN_KINDS)[number];
/** Where Mamba-1's decode step computes x_proj: a dispatch of its own, or folded into in_proj (tuning.decodeXProj). */
export const DECODE_XPROJ_KINDS = ['separate', 'folded'] as const;
export type DecodeXProjKind = (typeof DECODE_XPROJ_KINDS)[number];
export const DECODE_LOADS = ['early', 'late'] as const;
export type DecodeLoads = (typeof DECODE_LOADS)[number];

/** Everything the engine's ops need: the device, what it can do, and the shared caches. */
export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  pipelines: PipelineCache;
  /** Optional features that were available and enabled on the device. */
  features: ReadonlySet<string>;
  /**
   * The subgroup size the matrix-vector kernels may rely on (their reductions use subgroupAdd), or
   * null: only when the device has 'subgroups', its adapter has one fixed subgroup size, and a probe
   * shows that a 256-wide workgroup's subgroups are runs of consecutive local invocation indices
   * (`subgroupLayout`), which WGSL does not promise.
   */
  subgroupSize?: number | null;
  /**
   * Workgroups the grid decode (app/kernels/layer-grid.ts) may synchronise in one dispatch when
   * asked for (tuning.gridDecode 'auto'): from a probe of how many this GPU runs at once
   * (app/gpu/grid-sync.ts probeGridWorkgroups, run by whoever turns the grid decode on: the bench's
   * --grid auto), or null/absent (not probed, software adapters, GPUs too small, a failed probe).
   */
  gridWorkgroups?: number | null;
  /** Kernel shapes forced instead of the ops' own choice (benchmarks and tests; absent: the defaults). */
  tuning?: KernelTuning;
}

/**
 * The grid decode's workgroups on this context, or null: no grid decode. It is off unless
 * tuning.gridDecode asks for it ('auto': as many as the probe found room for), because on the H200
 * it measured no faster than the separate dispatches at 130m and slower at 2.7B (bench/RESULTS.md).
 */
export function gridDecodeWorkgroups(ctx: GpuContext): number | null {
  const asked = ctx.tuning?.gridDecode;
  if (asked === undefined || asked === false) return null;
  return asked === 'auto' ? (ctx.gridWorkgroups ?? null) : asked;
}

/** Shapes of kernels that have several (a benchmark sweeps them; each op documents its own). */
export interface KernelTuning {
  /**
   * norm-matvec (app/kernels/norm-matvec.ts): threads per row, rows per group of threads, 16-byte
   * loads in flight per row, the most workgroups launched; only for weights stored in `format`
   * when it is given.
   */
  matvec?: { threadsPerRow?: number; rows?: number; unroll?: number; groups?: number; format?: string };
  /** Kernels with one workgroup a row (residual_rmsnorm, gated_rmsnorm, top_k): threads per row, a power of two, at most the kernel's own (tests run both sizes). */
  rowWorkgroup?: number;
  /**
   * Mamba-1's prefill scan (app/kernels/selective-scan.ts prefillScanKind): 'serial' (a thread a
   * channel over all tokens, no barriers: a software adapter's default), 'channel' (a thread a
   * channel in chunks, N ≤ 16: a GPU's) or 'parallel' (lanes and chunks: a GPU's where N > 16).
   */
  prefillScan?: PrefillScanKind;
  /** Mamba-1's prefill scan: tokens a chunk instead of the scan's own choice (app/kernels/selective-scan.ts scanChunkLength). */
  scanChunk?: number;
  /** Mamba-2's SSD prefill: tokens a chunk instead of the config's chunk_size (app/arch/mamba2/mixer.ts). */
  ssdChunk?: number;
  /**
   * Mamba-2's SSD prefill: the tiles of chunk_states and chunk_scan (app/kernels/ssd.ts): 'narrow'
   * (64 × 64, 4 × 4 a thread: the default) or 'wide' (128 × 64, 8 × 8 a thread: asked for only).
   */
  ssdTile?: SsdTileName;
  /** Mamba-1's parallel prefill scan: lanes a channel, a power of two below the default (app/kernels/selective-scan.ts scanStateLanes). */
  scanLanes?: number;
  /**
   * The tiled matmul splits K until about this many workgroups run (default SPLIT_TARGET_GROUPS in
   * app/kernels/matmul.ts); partials that outgrow the model's shared scratch get a buffer of their op's own.
   */
  splitGroups?: number;
  /**
   * The int8 tensor-core products split K until about this many workgroups run (app/kernels/int8-gemm.ts
   * int8SplitCount; the reduce adds the splits). Absent: not split (the default until measured).
   */
  int8SplitGroups?: number;
  /**
   * The causal conv's kernel for a kernel size of 4 (app/kernels/causal-conv1d.ts): 'k4' (main_k4:
   * vectors, no arrays) or 'loop' (main, any size); other sizes always run 'loop'.
   */
  convKernel?: ConvKernelName;
  /** The int8 products' tensor-core kernel (app/kernels/int8-gemm.ts TcKernel) instead of defaultTcKernel. */
  int8TcKernel?: TcKernelName;
  /**
   * The grid decode (app/kernels/layer-grid.ts; off when absent or false): 'auto' for the
   * workgroups the adapter probe found room for (gridWorkgroups), or a power of two (tests force 1
   * on software adapters, which do not run workgroups side by side).
   */
  gridDecode?: number | 'auto' | false;
  /**
   * Mamba-1's fused decode (app/arch/mamba1/mixer.ts): 'separate' (x_proj a dispatch of its own:
   * the default) or 'folded' (each block of in_proj's rows writes x_proj's partial sums over its
   * conv channels, the step adds them: one dispatch a layer fewer, and Falcon-Mamba's norm of
   * dt_r, B, C in the step too; asked for only until measured on a GPU).
   */
  decodeXProj?: DecodeXProjKind;
  /** The grid decode's matrix-vector shape (app/kernels/layer-grid.ts GridShape). */
  gridShape?: { inRows?: number; outRows?: number; unroll?: number };
  /**
   * The decode kernels' early loads (norm_matvec.wgsl, ssd_scan.wgsl and selective_scan.wgsl
   * PREFETCH: an epilogue's inputs that do not depend on its sums — the conv's weights and state,
   * the residual, D, x, the gate's z — loaded before the weights instead of after the sums):
   * 'late' turns them off (the bench's comparison, `bench --decode-loads early,late`); absent or
   * 'early': on.
   */
  decodeLoads?: DecodeLoads;
  /** The pipelined decode's samplings in flight (app/model/generate.ts pipelineDepth: 3, or twice the batch; at least 2) instead of the default: `bench --decode-depth`. */
  decodeDepth?: number;
  /** The pipelined decode's steps a command buffer (app/model/generate.ts DECODE_BATCH) instead of the default: `bench --decode-batch`. */
  decodeBatch?: number;
}

/**
 * The subgroup size when subgroups of a 256-invocation workgroup are consecutive runs of
 * local_invocation_index of one fixed size (invocation i has subgroup_invocation_id i mod size, and
 * its subgroup's first invocation is i − that id), else null. One small dispatch.
 */
export async function subgroupLayout(device: GPUDevice, info: { subgroupMinSize?: number; subgroupMaxSize?: number } | undefined): Promise<number | null> {
  if (!device.features.has('subgroups')) return null;
  const size = info?.subgroupMinSize;
  if (!size || size !== info?.subgroupMaxSize || size > 256) return null;
  const code = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32, @builtin(subgroup_invocation_id) id: u32) {
  let first = subgroupBroadcastFirst(lid);
  out[lid] = select(0u, size, id == lid % size && first == lid - id);
}`;
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: 'Studio.subgroupProbe', code });
  const pipeline = device.createComputePipeline({ label: 'Studio.subgroupProbe', layout: 'auto', compute: { module, entryPoint: 'main' } });
  const out = device.createBuffer({ label: 'Studio.subgroupProbe.out', size: 1024, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ label: 'Studio.subgroupProbe.read', size: 1024, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] }));
    pass.dispatchWorkgroups(1);
    pass.end();
    encoder.copyBufferToBuffer(out, 0, read, 0, 1024);
    device.queue.submit([encoder.finish()]);
    if (await device.popErrorScope()) return null;
    await read.mapAsync(GPUMapMode.READ);
    const sizes = new Uint32Array(read.getMappedRange().slice(0));
    read.unmap();
    return sizes.every((s) => s === size) ? size : null;
  } catch {
    return null;
  } finally {
    out.destroy();
    read.destroy();
  }
}

export interface OpenDeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Called once if the device is lost (driver reset, GPU removed, destroy()). */
  onLost?: (info: { reason: string; message: string }) => void;
  onUncapturedError?: (message: string) => void;
}

let fallbackReport: ((message: string) => void) | null = null;

/**
 * Where uncaptured GPU errors go when openGpu is given no `onUncapturedError`. Unset (browsers),
 * the platform's default; Node sets it to stderr (app/node/dawn.ts), because Dawn's default is to
 * print them to stdout, which would corrupt the CLI's `--json` output.
 */
export function setFallbackUncapturedErrorReport(report: ((message: string) => void) | null): void {
  fallbackReport = report;
}

const WANTED_FEATURES = ['subgroups', 'timestamp-query', 'shader-f16', 'chromium-experimental-subgroup-matrix'] as const;

/** Requests an adapter and a device with the largest buffer limits the adapter offers. */
export async function openGpu(gpu: GPU | undefined, opts: OpenDeviceOptions = {}): Promise<GpuContext> {
  if (!gpu) {
    throw new GpuError('WebGPU is not available in this environment (navigator.gpu is missing).', 'unavailable');
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new GpuError('No WebGPU adapter was found: the GPU driver or browser refused one.', 'unavailable');
  }
  const summary = summarizeAdapter(adapter);
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    label: 'Studio.device',
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  void device.lost.then((info) => opts.onLost?.({ reason: String(info.reason), message: info.message }));
  device.addEventListener('uncapturederror', (event: unknown) => {
    const report = opts.onUncapturedError ?? fallbackReport;
    if (!report) return; // the platform's default: a browser's console
    // Reported here instead: Dawn in Node prints an error nobody prevented to stdout.
    (event as { preventDefault(): void }).preventDefault();
    report((event as GPUUncapturedErrorEvent).error.message);
  });
  return {
    device,
    adapter: summary,
    pipelines: new PipelineCache(device),
    features: new Set(requiredFeatures),
    subgroupSize: await subgroupLayout(device, (adapter as { info?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).info),
  };
}

/**
 * Whether `ctx`'s device has been lost, waiting up to `waitMs` for the loss to be told: a device
 * destroyed under running work rejects that work (mapAsync: an AbortError with no message) about
 * when its `lost` promise resolves, in either order. Null: not lost (within the wait).
 */
export async function deviceLoss(ctx: GpuContext, waitMs = 250): Promise<{ reason: string; message: string } | null> {
  let timer: unknown;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), waitMs);
  });
  const lost = ctx.device.lost.then((info) => ({ reason: String(info.reason), message: info.message }));
  try {
    return await Promise.race([lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
