/** What to tell a user whose browser or machine gave no WebGPU adapter. */
export function webGpuAdvice(userAgent: string): string[] {
  const advice: string[] = [];
  const linux = /Linux/i.test(userAgent) && !/Android/i.test(userAgent);
  if (/Electron/i.test(userAgent)) {
    advice.push('Update your GPU driver; Mamba Studio needs Vulkan (Linux), Metal (macOS) or Direct3D 12 (Windows).');
    if (linux) advice.push('On Linux, install the Vulkan loader and your driver\'s Vulkan ICD (e.g. `libvulkan1 mesa-vulkan-drivers`).');
  } else if (/Firefox/i.test(userAgent)) {
    advice.push('Use a browser with WebGPU enabled: Chrome or Edge 113+, or Firefox 141+ (Windows) / Nightly.');
  } else if (/Chrom(e|ium)/i.test(userAgent)) {
    if (linux) {
      advice.push('On Linux, start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan (or enable chrome://flags/#enable-unsafe-webgpu).');
    }
    advice.push('Check chrome://gpu: WebGPU must say "Hardware accelerated"; update the GPU driver if it is blocklisted.');
  } else if (/Safari/i.test(userAgent)) {
    advice.push('Use Safari 26 or later, or Chrome.');
  } else {
    advice.push('Use a WebGPU-capable browser (Chrome or Edge 113+) or the Mamba Studio desktop app.');
  }
  advice.push('Without a GPU, a software adapter (SwiftShader) works but is slow: keep models tiny.');
  return advice;
}
