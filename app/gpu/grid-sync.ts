/**
 * How many workgroups of 256 invocations this GPU runs at once: the grid decode
 * (app/kernels/layer-grid.ts) synchronises all of its workgroups with barriers inside one
 * dispatch, which only works when every one of them is running. WebGPU promises nothing of the
 * kind, so it is measured, without any waiting that could hang (occupancy discovery, after
 * Sorensen et al., "Portable inter-workgroup barrier synchronisation for GPUs", OOPSLA 2016): a
 * poll word holds an "open" bit and a count; a workgroup that finds the poll open takes the next
 * place by compare-and-swap and stays until the poll closes; the first one closes it once all
 * dispatched workgroups have come or a bounded number of polls has passed; a workgroup that finds
 * it closed leaves. The count when the poll closed is how many ran at once (a lower bound).
 *
 * The grid decode then uses the largest power of two at most half of that and at most
 * GRID_DECODE_MAX, leaving room for the decode kernel's own registers and workgroup memory; its
 * waits are bounded too (an abort flag, never a hang). Software adapters are not asked:
 * SwiftShader runs a few workgroups at a time and switches between them only at barriers.
 */
import { readBuffer } from './buffers.js';

const PROBE_WORKGROUPS = 1024;
/**
 * Measured on an H200 (bench/RESULTS.md): a grid barrier ~0.8 µs at 64–132 workgroups, 1.2 at 264, 2.1 at
 * 528; the decode at 256 workgroups faster than at 128 (the matrix-vector steps need the threads), and
 * 512 more than the decode kernel's registers let run at once there.
 */
export const GRID_DECODE_MAX = 256;

const CODE = `
@group(0) @binding(0) var<storage, read_write> ctl: array<atomic<u32>, 2>;
const OPEN = 0x80000000u;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid != 0u) { return; }
  var id = 0xffffffffu;
  for (var tries = 0u; tries < 100000u; tries++) {
    let old = atomicLoad(&ctl[0]);
    if ((old & OPEN) == 0u) { break; }
    let r = atomicCompareExchangeWeak(&ctl[0], old, old + 1u);
    if (r.exchanged) { id = old & ~OPEN; break; }
  }
  if (id == 0u) {
    for (var spins = 0u; spins < 200000u; spins++) {
      if ((atomicLoad(&ctl[0]) & ~OPEN) >= ${PROBE_WORKGROUPS}u) { break; }
    }
    atomicStore(&ctl[1], atomicAnd(&ctl[0], ~OPEN) & ~OPEN);
  } else if (id != 0xffffffffu) {
    // Stay until the poll closes: a workgroup that left would free its place for another to
    // register, and the count would not be how many run at once. (Bounded: the first one closes
    // it within its own bounded wait.)
    for (var spins = 0u; spins < 400000u; spins++) {
      if (atomicLoad(&ctl[1]) != 0u) { break; }
    }
  }
}`;

/** The workgroups of 256 invocations found running at once (0 when the probe failed). */
export async function probeCoresidentWorkgroups(device: GPUDevice): Promise<number> {
  device.pushErrorScope('validation');
  const ctl = device.createBuffer({ label: 'Studio.gridProbe.ctl', size: 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  try {
    const module = device.createShaderModule({ label: 'Studio.gridProbe', code: CODE });
    const pipeline = device.createComputePipeline({ label: 'Studio.gridProbe', layout: 'auto', compute: { module, entryPoint: 'main' } });
    device.queue.writeBuffer(ctl, 0, new Uint32Array([0x80000000, 0]));
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: ctl } }] }));
    pass.dispatchWorkgroups(PROBE_WORKGROUPS);
    pass.end();
    device.queue.submit([encoder.finish()]);
    if (await device.popErrorScope()) return 0;
    return new Uint32Array(await readBuffer(device, ctl, 4, 4))[0] ?? 0;
  } catch {
    return 0;
  } finally {
    ctl.destroy();
  }
}

/** Probes the device (not a software adapter) and returns the grid decode's workgroups for it, or null. */
export async function probeGridWorkgroups(device: GPUDevice, software: boolean): Promise<number | null> {
  return software ? null : gridWorkgroupsFor(await probeCoresidentWorkgroups(device));
}

/** The grid decode's workgroups for `coresident` found running at once: a power of two ≤ coresident / 2 and ≤ GRID_DECODE_MAX, or null below 16. */
export function gridWorkgroupsFor(coresident: number): number | null {
  const half = Math.min(Math.floor(coresident / 2), GRID_DECODE_MAX);
  if (half < 16) return null;
  return 2 ** Math.floor(Math.log2(half));
}
