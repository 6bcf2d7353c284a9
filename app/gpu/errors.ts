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
