// step_summary: a traced decode step's per-layer selection summary, from the slots the fused
// decode's scan kernels fill (selective_scan.wgsl step / step_dt and ssd_scan.wgsl step with
// TRACE_SUMMARY). A layer's slot holds, in floats from its offset:
//
//   Δ[u]        u < U   (Mamba-1: channels d < Di; Mamba-2: heads h < H)
//   gate[u]     u < U   Σ_s (1 − exp(Δ[u]·A[u, s])) over the column's S entries of A
//   sq[i]       i < Q   Σ_n state[i, n]² after the step (Mamba-1: per channel; Mamba-2: per row (h, p))
//
// and the step's summary row of the layer is the trace summary's (trace_summary.wgsl):
//
//   deltaNorm = sqrt(Σ_u Δ[u]²)   writeGate = Σ_u gate[u] / (U·S)   stateNorm = sqrt(Σ_i sq[i])
//   focusScore = Σ_u focus[u]·Δ[u]
//
// One workgroup per traced layer: each invocation adds a strided share, then a tree in workgroup
// memory; the vec4 goes to out[layer] (a staging row the step copies into the trace's rows).

override WORKGROUP_SIZE: u32 = 256u;  // a power of two

struct Info {
  offset: u32,    // the slot's first float
  columns: u32,   // U
  inv_gate: f32,  // 1 / (U·S)
  squares: u32,   // Q
}

@group(0) @binding(0) var<storage, read> infos: array<Info>;
@group(0) @binding(1) var<storage, read> slots: array<f32>;
@group(0) @binding(2) var<storage, read> focus: array<f32>;               // [≥ U] weights (1/|F| on the focus columns, else 0)
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;     // [layers]

var<workgroup> red: array<vec4<f32>, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let info = infos[wg.x];
  let U = info.columns;
  var s = vec4<f32>(0.0);
  for (var u = lid; u < U; u += WORKGROUP_SIZE) {
    let d = slots[info.offset + u];
    s.x += d * d;
    s.y += slots[info.offset + U + u];
    s.w += focus[u] * d;
  }
  for (var i = lid; i < info.squares; i += WORKGROUP_SIZE) {
    s.z += slots[info.offset + 2u * U + i];
  }
  red[lid] = s;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let t = red[0];
    out[wg.x] = vec4<f32>(sqrt(t.x), t.y * info.inv_gate, sqrt(t.z), t.w);
  }
}
