/** What the studio tells the user about the WebGPU adapter it runs on. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe, WARP): correct but slow. */
  software: boolean;
  features: string[];
  /**
   * The cooperative-matrix (tensor core) shapes the adapter offers with the feature
   * 'chromium-experimental-subgroup-matrix' (Dawn with allow_unsafe_apis, Chromium with
   * --enable-unsafe-webgpu); empty without it.
   */
  subgroupMatrixConfigs?: { componentType: string; resultComponentType: string; M: number; N: number; K: number }[];
  /** The adapter's subgroup sizes, where it reports them. */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeWorkgroupsPerDimension: number;
  };
}

/**
 * Whether the adapter offers int8 tensor cores to WebGPU as the int8 product needs them
 * (app/kernels/int8-gemm.ts): the features 'chromium-experimental-subgroup-matrix' and 'subgroups',
 * the i8 × i8 → i32 16×16×32 config, and one subgroup size.
 */
export function offersInt8TensorCores(a: Pick<AdapterSummary, 'features' | 'subgroupMatrixConfigs' | 'subgroupMinSize' | 'subgroupMaxSize'>): boolean {
  if (!a.features.includes('chromium-experimental-subgroup-matrix') || !a.features.includes('subgroups')) return false;
  const config = (a.subgroupMatrixConfigs ?? []).some((c) => c.componentType === 'i8' && c.resultComponentType === 'i32' && c.M === 16 && c.N === 16 && c.K === 32);
  return config && a.subgroupMaxSize !== undefined && a.subgroupMinSize === a.subgroupMaxSize;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render/i;

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  // `isFallbackAdapter` is on GPUAdapterInfo in current WebGPU, on GPUAdapter in older builds.
  const fallback =
    (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true ||
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const l = adapter.limits;
  const x = info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number; subgroupMatrixConfigs?: readonly Record<string, unknown>[] };
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software: fallback || SOFTWARE_NAMES.test(text),
    features: [...adapter.features].map(String).sort(),
    subgroupMatrixConfigs: (x.subgroupMatrixConfigs ?? []).map((c) => ({ componentType: String(c.componentType), resultComponentType: String(c.resultComponentType), M: Number(c.M), N: Number(c.N), K: Number(c.K) })),
    ...(x.subgroupMinSize !== undefined ? { subgroupMinSize: x.subgroupMinSize } : {}),
    ...(x.subgroupMaxSize !== undefined ? { subgroupMaxSize: x.subgroupMaxSize } : {}),
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
  };
}

/** One line for status bars and logs, e.g. "google swiftshader (SwiftShader driver 5.0.0) — software". */
export function describeAdapter(s: AdapterSummary): string {
  const name = [s.vendor, s.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  const detail = s.description || s.device;
  return `${name}${detail ? ` (${detail})` : ''}${s.software ? ' — software fallback' : ''}`;
}
