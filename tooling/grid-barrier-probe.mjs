#!/usr/bin/env node
// Probe: can one WebGPU dispatch synchronise all of its workgroups (a grid barrier), how much does
// a barrier cost against a dependent dispatch, and is data written before a barrier seen after it?
//
// WebGPU promises no forward progress between workgroups, so a barrier that waits for workgroups
// that never started would hang. The kernel therefore first finds which workgroups are running at
// the same time (occupancy discovery, after Sorensen et al., "Portable inter-workgroup barrier
// synchronisation for GPUs", OOPSLA 2016): a poll word holds an "open" bit and a count; a workgroup
// that finds the poll open takes the next id by compare-and-swap; the first one closes the poll once
// every dispatched workgroup has registered or a spin limit has passed; those that find it closed
// leave. Only the registered workgroups take part in the barriers, and work items are spread over
// them, so the kernel is correct for any number of participants (1 on a software adapter).
//
// Barrier k: thread 0 of each participant adds 1 to a counter, then spins until it reaches P·(k+1).
// Data crosses workgroups through atomic<u32> stores and loads (L2 on NVIDIA; plain loads may hit a
// stale L1 line), checked after every barrier against the value the writer stored; plain-memory
// copies of the same values are checked too and reported separately.
//
// Run (device): node tooling/grid-barrier-probe.mjs [--phases 2000] [--workgroups 64,132,264,528]
// Final line: RESULT {json}.
/* global console, process, performance, GPUBufferUsage, GPUMapMode */
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const PHASES = Number(arg('phases', '2000'));
const WGS = arg('workgroups', '32,64,132,264,528').split(',').map(Number);
const THREADS = 256;
const RESULT = { phases: PHASES, runs: [] };

const gridKernel = (spinLimit) => /* wgsl */ `
struct Params { phases: u32, dispatched: u32 }
@group(0) @binding(0) var<storage, read_write> ctl: array<atomic<u32>, 8>;   // 0 poll, 1 P, 2 barrier, 3 errors(atomic), 4 errors(plain), 5 abort
@group(0) @binding(1) var<storage, read_write> slots: array<atomic<u32>>;    // [maxP][THREADS]
@group(0) @binding(2) var<storage, read_write> plain: array<u32>;            // same values, plain stores
@group(0) @binding(3) var<uniform> params: Params;
const OPEN = 0x80000000u;
const NONE = 0xffffffffu;
var<workgroup> wg_id: u32;
var<workgroup> wg_p: u32;

var<workgroup> wg_abort: u32;
// Returns false when the barrier gave up (a participant did not arrive within the spin limit, or
// another one gave up): the kernel then stops, and the host sees ctl[5] != 0. Never hangs.
fn grid_barrier(lid: u32, p: u32, k: u32) -> bool {
  storageBarrier();
  if (lid == 0u) {
    atomicAdd(&ctl[2], 1u);
    let goal = p * (k + 1u);
    var spins = 0u;
    var abort = 0u;
    loop {
      if (atomicLoad(&ctl[2]) >= goal) { break; }
      spins += 1u;
      if ((spins & 63u) == 0u) {
        abort = atomicLoad(&ctl[5]);
        if (abort != 0u) { break; }
        if (spins >= ${spinLimit}u) { atomicStore(&ctl[5], 1u); abort = 1u; break; }
      }
    }
    wg_abort = abort;
  }
  return workgroupUniformLoad(&wg_abort) == 0u;
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid: u32) {
  if (lid == 0u) {
    var id = NONE;
    loop {
      let old = atomicLoad(&ctl[0]);
      if ((old & OPEN) == 0u) { break; }
      let r = atomicCompareExchangeWeak(&ctl[0], old, old + 1u);
      if (r.exchanged) { id = old & ~OPEN; break; }
    }
    if (id == 0u) {
      // The first one waits for the rest (or the spin limit), then closes the poll.
      var spins = 0u;
      loop {
        let c = atomicLoad(&ctl[0]) & ~OPEN;
        if (c >= params.dispatched || spins >= ${spinLimit}u) { break; }
        spins += 1u;
      }
      let closed = atomicAnd(&ctl[0], ~OPEN);
      atomicStore(&ctl[1], closed & ~OPEN);
    }
    var p = 0u;
    if (id != NONE) { loop { p = atomicLoad(&ctl[1]); if (p != 0u) { break; } } }
    wg_id = id;
    wg_p = p;
  }
  let id = workgroupUniformLoad(&wg_id);
  let p = workgroupUniformLoad(&wg_p);
  if (id == NONE) { return; }
  var bad = 0u;
  var badPlain = 0u;
  for (var k = 0u; k < params.phases; k++) {
    let v = k * 7919u + id * ${THREADS}u + lid + 1u;
    atomicStore(&slots[id * ${THREADS}u + lid], v);
    plain[id * ${THREADS}u + lid] = v;
    if (!grid_barrier(lid, p, 2u * k)) { break; }
    let other = (id + 1u + k % max(p - 1u, 1u)) % p;     // another workgroup where there is one
    let want = k * 7919u + other * ${THREADS}u + lid + 1u;
    if (atomicLoad(&slots[other * ${THREADS}u + lid]) != want) { bad++; }
    if (plain[other * ${THREADS}u + lid] != want) { badPlain++; }
    if (!grid_barrier(lid, p, 2u * k + 1u)) { break; }  // nobody overwrites a slot before it is read
  }
  if (bad != 0u) { atomicAdd(&ctl[3], bad); }
  if (badPlain != 0u) { atomicAdd(&ctl[4], badPlain); }
}`;

// Baseline: the same hand-over done by dependent dispatches in one pass (write, then read+check).
const dispatchKernel = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> buf: array<u32>;
@group(0) @binding(1) var<storage, read_write> errs: array<atomic<u32>, 1>;
@group(0) @binding(2) var<uniform> k: vec4<u32>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = wg.x * ${THREADS}u + lid;
  let other = ((wg.x + 1u) % nw.x) * ${THREADS}u + lid;
  if (buf[k.y + other] != k.x + other) { atomicAdd(&errs[0], 1u); }
  buf[k.z + i] = k.x + 1u + i;
}`;

async function main() {
  const gpu = create(['enable-dawn-features=allow_unsafe_apis']);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) { console.log('no adapter'); RESULT.error = 'no adapter'; return; }
  RESULT.adapter = adapter.info ? { vendor: adapter.info.vendor, architecture: adapter.info.architecture, device: adapter.info.device, description: adapter.info.description } : {};
  const device = await adapter.requestDevice();
  device.lost.then((i) => console.log('device lost', i.message));
  const soft = /swiftshader/i.test(JSON.stringify(RESULT.adapter));
  const spinLimit = soft ? 20000 : 2000000;
  const buf = (size, usage) => device.createBuffer({ size, usage });
  const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC, CD = GPUBufferUsage.COPY_DST;
  const read = async (b, size) => {
    const r = buf(size, GPUBufferUsage.MAP_READ | CD);
    const e = device.createCommandEncoder(); e.copyBufferToBuffer(b, 0, r, 0, size); device.queue.submit([e.finish()]);
    await r.mapAsync(GPUMapMode.READ); const out = new Uint32Array(r.getMappedRange().slice(0)); r.unmap(); r.destroy(); return out;
  };
  const gridPipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: gridKernel(spinLimit) }), entryPoint: 'main' } });
  const dispPipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: dispatchKernel }), entryPoint: 'main' } });
  const maxWg = Math.max(...WGS);
  const ctl = buf(32, S | CS | CD);
  const slots = buf(maxWg * THREADS * 4, S);
  const plain = buf(maxWg * THREADS * 4, S);
  const params = buf(16, GPUBufferUsage.UNIFORM | CD);

  for (const W of WGS) {
    for (const phases of [1, PHASES]) {
      device.queue.writeBuffer(ctl, 0, new Uint32Array([0x80000000, 0, 0, 0, 0, 0, 0, 0]));
      device.queue.writeBuffer(params, 0, new Uint32Array([phases, W, 0, 0]));
      const bg = device.createBindGroup({ layout: gridPipe.getBindGroupLayout(0), entries: [
        { binding: 0, resource: { buffer: ctl } }, { binding: 1, resource: { buffer: slots } },
        { binding: 2, resource: { buffer: plain } }, { binding: 3, resource: { buffer: params } }] });
      await device.queue.onSubmittedWorkDone();
      const t0 = performance.now();
      const e = device.createCommandEncoder(); const p = e.beginComputePass();
      p.setPipeline(gridPipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(W); p.end();
      device.queue.submit([e.finish()]);
      await device.queue.onSubmittedWorkDone();
      const ms = performance.now() - t0;
      const c = await read(ctl, 32);
      const run = { kind: 'grid', dispatched: W, phases, barriers: 2 * phases, participants: c[1], errors_atomic: c[3], errors_plain: c[4], aborted: c[5], ms };
      if (phases > 1) run.us_per_barrier = (ms * 1000) / (2 * phases);
      RESULT.runs.push(run); console.log(JSON.stringify(run));
    }
    // Dependent dispatches: 2·PHASES of them in one pass (alternating halves of a buffer).
    const n = W * THREADS;
    const b = buf(2 * n * 4, S | CD);
    const errs = buf(4, S | CS | CD);
    device.queue.writeBuffer(errs, 0, new Uint32Array([0]));
    const init = new Uint32Array(2 * n); for (let i = 0; i < n; i++) init[i] = i; // k = 0 expects i
    device.queue.writeBuffer(b, 0, init);
    const ubufs = []; const bgs = [];
    const D = Math.min(2 * PHASES, 2000);
    for (let k = 0; k < D; k++) {
      const u = buf(16, GPUBufferUsage.UNIFORM | CD); device.queue.writeBuffer(u, 0, new Uint32Array([k, (k % 2) * n, ((k + 1) % 2) * n, 0])); ubufs.push(u);
      bgs.push(device.createBindGroup({ layout: dispPipe.getBindGroupLayout(0), entries: [
        { binding: 0, resource: { buffer: b } },
        { binding: 1, resource: { buffer: errs } }, { binding: 2, resource: { buffer: u } }] }));
    }
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    const e = device.createCommandEncoder(); const p = e.beginComputePass(); p.setPipeline(dispPipe);
    for (let k = 0; k < D; k++) { p.setBindGroup(0, bgs[k]); p.dispatchWorkgroups(W); }
    p.end(); device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - t0;
    const er = await read(errs, 4);
    const run = { kind: 'dispatches', dispatched: W, dispatches: D, ms, us_per_dispatch: (ms * 1000) / D, errors: er[0] };
    RESULT.runs.push(run); console.log(JSON.stringify(run));
    for (const u of ubufs) u.destroy(); b.destroy(); errs.destroy();
  }
}
main().catch((e) => { RESULT.error = String((e && e.stack) || e); }).finally(() => { console.log('RESULT ' + JSON.stringify(RESULT)); process.exit(0); });
