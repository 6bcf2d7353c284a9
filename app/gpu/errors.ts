/** A GPU failure the studio can explain: what went wrong and, where known, what to do. */
export class GpuError extends Error {
  constructor(
    message: string,
    readonly kind: 'unavailable' | 'validation' | 'out-of-memory' | 'internal' | 'device-lost',
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

/**
 * Runs `body` inside validation and out-of-memory error scopes, so a GPU error is thrown here,
 * naming `what`, instead of surfacing later as an uncaptured error event.
 */
export async function withErrorScopes<T>(device: GPUDevice, what: string, body: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: body() };
  } catch (error) {
    outcome = { ok: false, error };
  }
  // Pop both scopes whatever happened, so a failing body leaves no scope behind.
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (oom) throw new GpuError(`${what}: out of GPU memory (${oom.message})`, 'out-of-memory');
  if (validation) throw new GpuError(`${what}: ${validation.message}`, 'validation');
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** Bytes for people: "640 B", "12.0 MiB", "1.50 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 2 ** 30) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Runs `allocate` (synchronous GPU calls that allocate memory) inside an out-of-memory error
 * scope, pushed and popped around it with nothing awaited in between, so that no other scope can
 * interleave. If the device ran out of memory, `release` frees what `allocate` made and a
 * GpuError('out-of-memory') names `what` and the `bytes` it needed: one clean error, instead of
 * invalid buffers whose every later use is another validation error.
 */
export async function allocateOrFail<T>(device: GPUDevice, what: string, bytes: number, allocate: () => T, release: (value: T) => void): Promise<T> {
  device.pushErrorScope('out-of-memory');
  let value: T;
  try {
    value = allocate();
  } catch (error) {
    await device.popErrorScope();
    throw error;
  }
  const oom = await device.popErrorScope();
  if (oom) {
    release(value);
    throw new GpuError(`${what}: out of GPU memory allocating ${formatBytes(bytes)} (${oom.message})`, 'out-of-memory');
  }
  return value;
}
