/**
 * A kernel dispatch bound once to its buffers and shape: encode it as often as needed (every
 * decode step, say) without allocating anything. `destroy` frees what the op itself owns
 * (its uniform buffer), never the buffers it was given.
 */
export interface Dispatch {
  readonly label: string;
  encode(pass: GPUComputePassEncoder): void;
  destroy(): void;
}

/** Encodes dispatches into one compute pass of one command buffer and submits it. */
export function submitDispatches(device: GPUDevice, label: string, dispatches: readonly Dispatch[]): void {
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  const pass = encoder.beginComputePass({ label: `${label}.pass` });
  for (const d of dispatches) d.encode(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
}
