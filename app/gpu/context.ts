import { summarizeAdapter, type AdapterSummary } from './adapter.js';
import { GpuError } from './errors.js';
import { PipelineCache } from './pipelines.js';

/** Everything the engine's ops need: the device, what it can do, and the shared caches. */
export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterSummary;
  pipelines: PipelineCache;
  /** Optional features that were available and enabled on the device. */
  features: ReadonlySet<string>;
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

const WANTED_FEATURES = ['subgroups', 'timestamp-query', 'shader-f16'] as const;

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
