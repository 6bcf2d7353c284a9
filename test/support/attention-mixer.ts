/**
 * A test-only mixer that is no state space model: single-head causal self-attention with a KV
 * cache, q = k = v = the block's normed input (no weights), out_t = Σ_{s ≤ t} softmax_s(q_t·k_s/√D)·v_s.
 * It shows the Mixer interface (app/model/mixer.ts) admitting an attention layer: its state is
 * [keys (capacity × D), values (capacity × D), length (u32)], all zero for an empty sequence, so
 * the session resets, forks and copies it like any other state; the length lives on the GPU and
 * the kernels advance it, so a one-token plan built once serves every step.
 */
import type { Mixer, MixerBuild, MixerContext, MixerState } from '../../app/model/mixer';
import type { MixerRef } from '../../app/model/reference';

const CODE = /* wgsl */ `
struct Params { tokens: u32, dim: u32, capacity: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> keys: array<f32>;
@group(0) @binding(3) var<storage, read_write> values: array<f32>;
@group(0) @binding(4) var<storage, read_write> len: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The chunk's rows into the cache after the tokens already there.
@compute @workgroup_size(64)
fn append(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= p.tokens * p.dim) { return; }
  let row = len[0] + i / p.dim;
  if (row >= p.capacity) { return; }
  keys[row * p.dim + i % p.dim] = x[i];
  values[row * p.dim + i % p.dim] = x[i];
}

// One invocation per token of the chunk: attends to every cached row up to its own.
@compute @workgroup_size(64)
fn attend(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.x;
  if (t >= p.tokens) { return; }
  let last = min(len[0] + t, p.capacity - 1u);
  let scale = 1.0 / sqrt(f32(p.dim));
  var best = -3.4e38;
  for (var s = 0u; s <= last; s++) {
    var dot = 0.0;
    for (var d = 0u; d < p.dim; d++) { dot += x[t * p.dim + d] * keys[s * p.dim + d]; }
    best = max(best, dot * scale);
  }
  var total = 0.0;
  for (var d = 0u; d < p.dim; d++) { out[t * p.dim + d] = 0.0; }
  for (var s = 0u; s <= last; s++) {
    var dot = 0.0;
    for (var d = 0u; d < p.dim; d++) { dot += x[t * p.dim + d] * keys[s * p.dim + d]; }
    let w = exp(dot * scale - best);
    total += w;
    for (var d = 0u; d < p.dim; d++) { out[t * p.dim + d] += w * values[s * p.dim + d]; }
  }
  for (var d = 0u; d < p.dim; d++) { out[t * p.dim + d] /= total; }
}

@compute @workgroup_size(1)
fn advance() { len[0] = min(len[0] + p.tokens, p.capacity); }
`;

export class AttentionTestMixer implements Mixer {
  readonly trace = null;
  private readonly pipelines: Record<'append' | 'attend' | 'advance', GPUComputePipeline>;
  private readonly owned: GPUBuffer[] = [];

  constructor(
    private readonly b: MixerBuild,
    readonly capacity: number,
  ) {
    const { device } = b.ctx;
    const module = device.createShaderModule({ label: 'TestAttention', code: CODE });
    const make = (entryPoint: string) => device.createComputePipeline({ label: `TestAttention.${entryPoint}`, layout: 'auto', compute: { module, entryPoint } });
    this.pipelines = { append: make('append'), attend: make('attend'), advance: make('advance') };
  }

  get stateBytes(): number {
    return 2 * this.capacity * this.b.config.dModel * 4 + 16;
  }

  newState(): MixerState {
    const { device } = this.b.ctx;
    const D = this.b.config.dModel;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    return [
      device.createBuffer({ label: `TestAttention.L${this.b.layer}.keys`, size: this.capacity * D * 4, usage }),
      device.createBuffer({ label: `TestAttention.L${this.b.layer}.values`, size: this.capacity * D * 4, usage }),
      device.createBuffer({ label: `TestAttention.L${this.b.layer}.length`, size: 16, usage }),
    ];
  }

  canFuseDecode(): boolean {
    return false;
  }

  encode(m: MixerContext): void {
    const { device } = this.b.ctx;
    const D = this.b.config.dModel;
    const T = m.tokens;
    const params = device.createBuffer({ label: `TestAttention.L${m.layer}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(params, 0, new Uint32Array([T, D, this.capacity, 0]));
    this.owned.push(params);
    const [keys, values, length] = m.state as [GPUBuffer, GPUBuffer, GPUBuffer];
    const entries = [params, m.input, keys, values, length, m.output].map((buffer, binding) => ({ binding, resource: { buffer } }));
    const step = (name: 'append' | 'attend' | 'advance', groups: number) => {
      const pipeline = this.pipelines[name];
      // Each entry point uses only some bindings, so each gets a bind group of its own layout's.
      const layout = pipeline.getBindGroupLayout(0);
      const used = { append: [0, 1, 2, 3, 4], attend: [0, 1, 2, 3, 4, 5], advance: [0, 4] }[name];
      const bindGroup = device.createBindGroup({ label: `TestAttention.${name}`, layout, entries: entries.filter((e) => used.includes(e.binding)) });
      m.run({ label: `TestAttention.L${m.layer}.${name}`, encode: (pass) => { pass.setPipeline(pipeline); pass.setBindGroup(0, bindGroup); pass.dispatchWorkgroups(groups); }, destroy: () => {} });
    };
    step('append', Math.ceil((T * D) / 64));
    step('attend', Math.ceil(T / 64));
    step('advance', 1);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

/** float64 reference of the same attention over a whole sequence from an empty cache. */
export const attentionRef: MixerRef = ({ config, input: x, tokens: T }) => {
  const D = config.dModel;
  const output = new Float64Array(T * D);
  const scale = 1 / Math.sqrt(D);
  for (let t = 0; t < T; t++) {
    const scores = Array.from({ length: t + 1 }, (_, s) => {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += (x[t * D + d] as number) * (x[s * D + d] as number);
      return dot * scale;
    });
    const best = Math.max(...scores);
    const w = scores.map((v) => Math.exp(v - best));
    const total = w.reduce((a, b) => a + b, 0);
    for (let s = 0; s <= t; s++) for (let d = 0; d < D; d++) output[t * D + d] = (output[t * D + d] as number) + ((w[s] as number) / total) * (x[s * D + d] as number);
  }
  return { output, taps: {} };
};
