/**
 * A kernel dispatch bound once to its buffers and shape: encode it as often as needed (every
 * decode step, say) without allocating anything. `destroy` frees what the op itself owns
 * (its uniform buffer), never the buffers it was given.
 */
export interface Dispatch {
  readonly label: string;
  encode(pass: GPUComputePassEncoder): void;
  destroy(): void;
  /**
   * The kernels of an op that runs several (the SSD's five, the chunked scan's three, a split
   * matmul and its reduce), in the order `encode` runs them, each encodable alone: the bench's
   * per-kernel breakdown times each in a pass of its own. Absent: the op is one kernel.
   */
  readonly parts?: readonly DispatchPart[];
}

/** One kernel of a several-kernel op (Dispatch.parts). */
export interface DispatchPart {
  readonly name: string;
  encode(pass: GPUComputePassEncoder): void;
}

/** The part that runs `pipeline` with `bindGroup` over `groups` workgroups. */
export function kernelPart(name: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, groups: readonly [number, number?, number?]): DispatchPart {
  return {
    name,
    encode(pass) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...groups);
    },
  };
}

/** An op's encode from its parts: each in order, in one pass. */
export function encodeParts(parts: readonly DispatchPart[]): (pass: GPUComputePassEncoder) => void {
  return (pass) => {
    for (const p of parts) p.encode(pass);
  };
}

/** Encodes dispatches into one compute pass of one command buffer and submits it. */
export function submitDispatches(device: GPUDevice, label: string, dispatches: readonly Dispatch[]): void {
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  const pass = encoder.beginComputePass({ label: `${label}.pass` });
  for (const d of dispatches) d.encode(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
}

/**
 * What the bench's per-kernel breakdown times one pass each: an op's parts, named `label.part`, or
 * the op itself.
 */
export function kernelUnits(d: Dispatch): { label: string; encode(pass: GPUComputePassEncoder): void }[] {
  return d.parts ? d.parts.map((p) => ({ label: `${d.label}.${p.name}`, encode: (pass: GPUComputePassEncoder) => p.encode(pass) })) : [d];
}

/** Submits the dispatches' kernel units (kernelUnits) each in a compute pass of its own. */
export function submitUnitsApart(device: GPUDevice, label: string, dispatches: readonly Dispatch[]): void {
  const encoder = device.createCommandEncoder({ label: `${label}.encoder` });
  for (const unit of dispatches.flatMap(kernelUnits)) {
    const pass = encoder.beginComputePass({ label: `${label}.${unit.label}` });
    unit.encode(pass);
    pass.end();
  }
  device.queue.submit([encoder.finish()]);
}
