/** Buffer helpers: every buffer is labelled `Owner.field`, so validation errors name the culprit. */

export function storageBuffer(device: GPUDevice, label: string, byteLength: number, extraUsage = 0): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(4, Math.ceil(byteLength / 4) * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
  });
}

export function uniformBuffer(device: GPUDevice, label: string, byteLength: number): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(byteLength / 16) * 16),
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
}

export function uploadF32(device: GPUDevice, label: string, data: Float32Array): GPUBuffer {
  const buffer = storageBuffer(device, label, data.byteLength);
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

/** Copies `byteLength` bytes of `source` from `offset` (a multiple of 4) to the CPU. One submit-and-wait; not for hot paths. */
export async function readBuffer(device: GPUDevice, source: GPUBuffer, byteLength = source.size, offset = 0): Promise<ArrayBuffer> {
  const staging = device.createBuffer({
    label: `${source.label || 'buffer'}.readback`,
    size: Math.ceil(byteLength / 4) * 4,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'readBuffer.encoder' });
    encoder.copyBufferToBuffer(source, offset, staging, 0, staging.size);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, byteLength);
  } finally {
    staging.destroy();
  }
}

/** `count` floats of `source` from float index `first`. */
export async function readF32(device: GPUDevice, source: GPUBuffer, count?: number, first = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, source, (count ?? source.size / 4 - first) * 4, first * 4));
}
