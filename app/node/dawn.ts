/**
 * WebGPU in Node through Dawn (npm `webgpu`). Finds an adapter by itself: a real GPU when the
 * system's Vulkan/Metal/D3D driver gives one; else SwiftShader's Vulkan driver when one is found
 * (Chromium ships it); else a clear explanation of what was tried.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setFallbackUncapturedErrorReport } from '../gpu/context.js';
import { DAWN_UNSAFE_TOGGLE } from '../model/int8-prefill.js';

export interface NodeGpu {
  gpu: GPU;
  /** How the adapter was found, for logs and skip messages. */
  via: string;
}

/** Where SwiftShader's Vulkan ICD manifest is usually found. */
export function swiftShaderCandidates(env = process.env): string[] {
  const list = [
    env.SWIFTSHADER_ICD,
    '/usr/lib/chromium/vk_swiftshader_icd.json',
    '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
    '/opt/google/chrome/vk_swiftshader_icd.json',
    env.CHROMIUM_PATH ? path.join(path.dirname(env.CHROMIUM_PATH), 'vk_swiftshader_icd.json') : undefined,
  ];
  return list.filter((p): p is string => Boolean(p));
}

/**
 * Dawn's GPU objects must outlive every adapter and device made from them: if one is garbage
 * collected while a device is in use, the process crashes. Keep every one made here alive.
 */
const keepAlive: GPU[] = [];

async function loadDawn(): Promise<{ create: (flags: string[]) => GPU; globals: Record<string, unknown> }> {
  try {
    return (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  } catch (error) {
    throw new Error(`the npm package "webgpu" (Dawn) could not be loaded: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** A Dawn toggle's name as `enable-dawn-features=` takes it (bench --dawn-features). */
export const DAWN_TOGGLE_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * The bench's Dawn flags: timestamps unquantized, and one enable-dawn-features list holding the
 * unsafe APIs (the int8 tensor cores) and the toggles asked for (e.g. disable_robustness): Dawn
 * reads one such flag, so they are merged into it.
 */
export function benchDawnFlags(unsafe: boolean, toggles: readonly string[]): string[] {
  const enabled = [...(unsafe ? [DAWN_UNSAFE_TOGGLE] : []), ...toggles];
  return ['disable-dawn-features=timestamp_quantization', ...(enabled.length ? [`enable-dawn-features=${enabled.join(',')}`] : [])];
}

/** How an uncaptured GPU error (one no error scope caught) is printed in Node: on stderr, one line per error. */
export function reportToStderr(message: string): void {
  process.stderr.write(`webgpu: uncaptured error: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
}

/**
 * Returns a GPU whose requestAdapter() gives an adapter, or throws an Error whose message says
 * what was tried. Sets WebGPU's globals (GPUBufferUsage, …) on globalThis.
 */
export async function findNodeGpu(options: { flags?: string[]; allowSoftware?: boolean } = {}): Promise<NodeGpu> {
  const dawn = await loadDawn();
  Object.assign(globalThis, dawn.globals);
  // Dawn prints uncaptured errors to stdout; devices opened by openGpu report them on stderr.
  setFallbackUncapturedErrorReport(reportToStderr);
  const flags = options.flags ?? [];
  const tried: string[] = [];
  const configured = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;

  const attempt = async (via: string): Promise<NodeGpu | null> => {
    const gpu = dawn.create(flags);
    keepAlive.push(gpu);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter) return { gpu, via };
    tried.push(via);
    return null;
  };

  const first = await attempt(configured ? `the Vulkan driver in VK_ICD_FILENAMES/VK_DRIVER_FILES (${configured})` : 'the system GPU drivers');
  if (first) return first;
  if (!configured && options.allowSoftware !== false) {
    for (const icd of swiftShaderCandidates()) {
      if (!existsSync(icd)) {
        tried.push(`SwiftShader at ${icd} (not found)`);
        continue;
      }
      process.env.VK_ICD_FILENAMES = icd;
      const found = await attempt(`SwiftShader (VK_ICD_FILENAMES=${icd})`);
      if (found) return found;
      delete process.env.VK_ICD_FILENAMES;
    }
  }
  throw new Error(
    `no WebGPU adapter in Node. Tried: ${tried.join('; ')}. ` +
      'Install a GPU driver with Vulkan, or Chromium (its SwiftShader), and the Vulkan loader (Debian: libvulkan1).',
  );
}
