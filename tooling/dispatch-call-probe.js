// `node tooling/dispatch-call-probe.js [dispatches]`: what each of a dispatch's three calls costs the
// CPU in Dawn (npm `webgpu`), the split behind a decode step's CPU time (bench decode_step_cpu_ms;
// tooling/run-step-encode-probe.js times the real plans). One compute pass of N tiny dispatches
// (one workgroup each, GPU idle between rounds), four ways: every dispatch its own pipeline (4
// alternating) and bind group, as a decode step does; one pipeline set every time; the pipeline
// set once; the pipeline and bind group set once. Medians of 40 rounds (the four ways
// interleaved), encode + finish and submit apart. Without a GPU:
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json. Dawn toggles:
// DAWN_FLAGS="enable-dawn-features=skip_validation".
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const { GPUBufferUsage } = globals;
const gpu = create(process.env.DAWN_FLAGS ? process.env.DAWN_FLAGS.split(' ') : []);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter');
const device = await adapter.requestDevice();
const N = Number(process.argv[2] ?? 256);
const code = (i) => `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> c: array<f32>;
@group(0) @binding(3) var<uniform> u: vec4<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < u.x) { a[g.x] = b[g.x] + c[g.x] + ${i}.0; } }`;
const pipes = [0, 1, 2, 3].map((i) => device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: code(i) }), entryPoint: 'main' } }));
const bufs = Array.from({ length: 64 }, () => device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE }));
const ub = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM });
const groups = Array.from({ length: N }, (_, k) =>
  device.createBindGroup({
    layout: pipes[k % 4].getBindGroupLayout(0),
    entries: [0, 1, 2].map((j) => ({ binding: j, resource: { buffer: bufs[(k + j) % 64] } })).concat([{ binding: 3, resource: { buffer: ub } }]),
  }),
);
const MODES = {
  'pipeline + bind group + dispatch (a decode step)': (pass, k) => {
    pass.setPipeline(pipes[k % 4]);
    pass.setBindGroup(0, groups[k]);
  },
  'same pipeline set again + bind group + dispatch': (pass, k) => {
    pass.setPipeline(pipes[0]);
    pass.setBindGroup(0, groups[4 * (k >> 2)]);
  },
  'bind group + dispatch (pipeline once)': (pass, k) => {
    if (k === 0) pass.setPipeline(pipes[0]);
    pass.setBindGroup(0, groups[4 * (k >> 2)]);
  },
  'dispatch only': (pass, k) => {
    if (k === 0) {
      pass.setPipeline(pipes[0]);
      pass.setBindGroup(0, groups[0]);
    }
  },
};
const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
console.log(`adapter: ${adapter.info.description || adapter.info.vendor}; ${N} dispatches a pass`);
// The four ways interleaved, round after round (drift in the machine's speed hits each alike).
const times = Object.fromEntries(Object.keys(MODES).map((name) => [name, { encode: [], submit: [] }]));
for (let r = 0; r < 40; r++) {
  for (const [name, set] of Object.entries(MODES)) {
    const t0 = performance.now();
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let k = 0; k < N; k++) {
      set(pass, k);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    const commands = encoder.finish();
    const t1 = performance.now();
    device.queue.submit([commands]);
    times[name].encode.push(t1 - t0);
    times[name].submit.push(performance.now() - t1);
    await device.queue.onSubmittedWorkDone();
  }
}
for (const [name, { encode, submit }] of Object.entries(times)) {
  const e = median(encode);
  const s = median(submit);
  console.log(`${name}: encode ${e.toFixed(3)} ms, submit ${s.toFixed(3)} ms, ${((1000 * (e + s)) / N).toFixed(2)} µs a dispatch`);
}
process.exit(0);
