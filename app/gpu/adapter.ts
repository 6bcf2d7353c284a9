/** What the studio tells the user about the WebGPU adapter it runs on. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe, WARP): correct but slow. */
  software: boolean;
  features: string[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeWorkgroupsPerDimension: number;
  };
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
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software: fallback || SOFTWARE_NAMES.test(text),
    features: [...adapter.features].map(String).sort(),
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
