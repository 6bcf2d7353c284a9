// trace_summary: per-token selection summaries of traced layers, computed on the GPU from the
// trace's taps (Δ rows, the dbc rows holding B — and, for Mamba-2, x — and Mamba-1's x tap), with
// each layer's recurrent state replayed in a buffer carried from one call to the next:
//
//   A[u, s]        = −exp(A_log[u, s])                              (Mamba-1 [Di, N], Mamba-2 [H, 1])
//   state[u, p, n] ← exp(Δ[t, u]·A[u, n mod S])·state[u, p, n] + Δ[t, u]·x[t, u·P + p]·B[t, g(u), n]
//   deltaNorm[t]   = sqrt(Σ_u Δ[t, u]²)
//   writeGate[t]   = mean over (u, s) of 1 − exp(Δ[t, u]·A[u, s])
//   stateNorm[t]   = sqrt(Σ_{u,p,n} state[u, p, n]²)                 (after token t)
//   focusScore[t]  = Σ_u focus[u]·Δ[t, u]                            (focus[u] = 1/|F| on the focus columns)
//
// with u < U Δ columns (Mamba-1: channels d < Di, P = 1, S = N; Mamba-2: heads h < H, P = head_dim,
// S = 1), n < N states, g(u) = ⌊u·G/U⌋ the B group a column reads (Mamba-1: G = 1).
//
// Entry points, run in one compute pass (each with its own bind group layout; they share `call`
// and `partials`):
//   scan    one dispatch per layer. An invocation owns up to K_MAX state elements e < U·P·N
//           (e = first + k·threads, so neighbours own neighbours), keeps them in registers and
//           walks the call's rows in order; the workgroup adds its elements' contributions
//           (Σ Δ², Σ (1 − e^{ΔA}), Σ v², Σ focus·Δ) in workgroup memory, ROW_BLOCK rows at a
//           time, and writes one vec4 partial per (row, workgroup). The Δ terms are counted once per column (by
//           its element p = 0, n = 0); the gate once per (u, s) (p = 0, n < S).
//   reduce  one dispatch per batch of layers, right after its scans: one invocation per (row,
//           layer) adds the layer's partials of that row (laid out [workgroup, row], so
//           neighbouring rows read neighbouring partials) and writes (deltaNorm, writeGate,
//           stateNorm, focusScore) as a vec4 at summary row dst_row + t:
//           out[(dst_row + t)·layers + layer]. (One workgroup per (row, layer) with a tree
//           reduction cost ~1 ms per row on SwiftShader: thousands of workgroups with barriers.)
//
// Numerics: fp32. Δ ≥ 0 and A < 0, so every exponent is ≤ 0. The gate's 1 − exp(x) is
// one_minus_exp (shaders/softplus.wgsl: a series near 0, where 1 − exp(x) in fp32 would lose
// digits to cancellation).

override WORKGROUP_SIZE: u32 = 64u;   // a power of two, a multiple of ROW_BLOCK (the reductions halve it)

const K_MAX: u32 = 8u;        // state elements per invocation at most
const ROW_BLOCK: u32 = 8u;    // scan: rows whose sums are reduced together

struct Layer {
  elements: u32,     // U·P·N
  columns: u32,      // U: Δ columns, Δ's row stride
  per_column: u32,   // P: x channels (and states) per Δ column
  d_state: u32,      // N
  a_states: u32,     // S: A's entries per Δ column
  groups: u32,       // G: B groups (column u reads group ⌊u·G/U⌋)
  row_width: u32,    // floats per dbc row
  b_offset: u32,     // where B starts in a dbc row
  x_stride: u32,     // floats per x row (Mamba-1's x tap: Di; Mamba-2: the dbc row width)
  x_offset: u32,     // where x starts in an x row
  has_x: u32,        // 1: replay the state (stateNorm); 0: leave it (no x)
  per_thread: u32,   // K ≤ K_MAX: elements per invocation
  threads: u32,      // workgroups·WORKGROUP_SIZE: the stride between an invocation's elements
  groups_x: u32,     // workgroups along x (the linear count is folded into x, y)
  workgroups: u32,   // the linear count: partials per row
  partial_base: u32, // where this layer's partials start (vec4 index): [workgroups, max_rows]
  max_rows: u32,     // the partials' row stride
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

struct Call {
  rows: u32,     // rows of this call (≥ 1)
  src_row: u32,  // first input row
  dst_row: u32,  // first summary row
  _pad: u32,
}

struct Batch {
  first_layer: u32,  // the batch's first layer (its dispatch's workgroup_id.y = 0)
  layers: u32,       // all traced layers: the summary row stride in vec4s
  _pad0: u32,
  _pad1: u32,
}

struct Info {
  partial_base: u32,
  workgroups: u32,
  inv_gate: f32,     // 1 / (U·S)
  max_rows: u32,
}

@group(0) @binding(0) var<uniform> layer: Layer;
@group(0) @binding(1) var<uniform> call: Call;                    // dynamic offset: one slot per encode
@group(0) @binding(2) var<storage, read> delta: array<f32>;       // [rows, U] Δ (after softplus)
@group(0) @binding(3) var<storage, read> dbc: array<f32>;         // [rows, row_width], B at b_offset
@group(0) @binding(4) var<storage, read> x_in: array<f32>;        // [rows, x_stride], x at x_offset
@group(0) @binding(5) var<storage, read> a_log: array<f32>;       // [U, S]
@group(0) @binding(6) var<storage, read> focus: array<f32>;       // [≥ U] weights (1/|F| or 0)
@group(0) @binding(7) var<storage, read_write> state: array<f32>; // [U, P, N], carried
@group(0) @binding(8) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(10) var<uniform> batch: Batch;
@group(0) @binding(11) var<storage, read> infos: array<Info>;     // per layer
@group(0) @binding(12) var<storage, read_write> out: array<vec4<f32>>;  // [capacity, layers]

var<workgroup> red: array<vec4<f32>, ROW_BLOCK * WORKGROUP_SIZE>;  // scan: [ROW_BLOCK, WORKGROUP_SIZE]

// one_minus_exp(x): shaders/softplus.wgsl, prepended by the op.

@compute @workgroup_size(WORKGROUP_SIZE)
fn scan(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = wg.y * layer.groups_x + wg.x;
  let first = group * WORKGROUP_SIZE + lid;
  let pn = layer.per_column * layer.d_state;
  let n_states = layer.d_state;
  // Per owned element: its state, A, Δ column, x and B columns, and what it counts.
  var v: array<f32, K_MAX>;
  var a: array<f32, K_MAX>;
  var col: array<u32, K_MAX>;
  var x_col: array<u32, K_MAX>;
  var b_col: array<u32, K_MAX>;
  var gate_w: array<f32, K_MAX>;   // 1: counts in the gate
  var lead_w: array<f32, K_MAX>;   // 1: counts Δ² and focus (its column's first element)
  var focus_w: array<f32, K_MAX>;
  var live: array<bool, K_MAX>;
  for (var k = 0u; k < layer.per_thread; k++) {
    let e = first + k * layer.threads;
    live[k] = e < layer.elements;
    if (live[k]) {
      let u = e / pn;
      let rem = e % pn;
      let p = rem / n_states;
      let n = rem % n_states;
      col[k] = u;
      x_col[k] = layer.x_offset + u * layer.per_column + p;
      b_col[k] = layer.b_offset + ((u * layer.groups) / layer.columns) * n_states + n;
      a[k] = -exp(a_log[u * layer.a_states + n % layer.a_states]);
      gate_w[k] = select(0.0, 1.0, p == 0u && n < layer.a_states);
      lead_w[k] = select(0.0, 1.0, p == 0u && n == 0u);
      focus_w[k] = focus[u];
      v[k] = select(0.0, state[e], layer.has_x != 0u);
    }
  }
  // Rows in blocks of ROW_BLOCK: each invocation leaves its row sums in red[r·WORKGROUP_SIZE + lid],
  // then split lanes per row add them up (two steps): three barriers per block, not one per
  // tree level per row.
  for (var t0 = 0u; t0 < call.rows; t0 += ROW_BLOCK) {
    let rb = min(ROW_BLOCK, call.rows - t0);
    for (var r = 0u; r < rb; r++) {
      let row = call.src_row + t0 + r;
      var acc = vec4<f32>(0.0);
      for (var k = 0u; k < layer.per_thread; k++) {
        if (live[k]) {
          let dt = delta[row * layer.columns + col[k]];
          let da = dt * a[k];
          acc.x += lead_w[k] * dt * dt;
          acc.y += gate_w[k] * one_minus_exp(da);
          acc.w += lead_w[k] * focus_w[k] * dt;
          if (layer.has_x != 0u) {
            let dx = dt * x_in[row * layer.x_stride + x_col[k]];
            let next = exp(da) * v[k] + dx * dbc[row * layer.row_width + b_col[k]];
            v[k] = next;
            acc.z += next * next;
          }
        }
      }
      red[r * WORKGROUP_SIZE + lid] = acc;
    }
    workgroupBarrier();
    let split = WORKGROUP_SIZE / ROW_BLOCK;  // lanes adding up one row's sums
    let r = lid / split;
    let q = lid % split;
    if (r < rb) {
      // Lane q of row r alone reads entries q, q + split, …: it may write entry q.
      var s = vec4<f32>(0.0);
      for (var i = q; i < WORKGROUP_SIZE; i += split) {
        s += red[r * WORKGROUP_SIZE + i];
      }
      red[r * WORKGROUP_SIZE + q] = s;
    }
    workgroupBarrier();
    if (q == 0u && r < rb && group < layer.workgroups) {
      var s = vec4<f32>(0.0);
      for (var i = 0u; i < split; i++) {
        s += red[r * WORKGROUP_SIZE + i];
      }
      partials[layer.partial_base + group * layer.max_rows + t0 + r] = s;
    }
    workgroupBarrier();  // read before the next block overwrites red
  }
  if (layer.has_x != 0u) {
    for (var k = 0u; k < layer.per_thread; k++) {
      if (live[k]) {
        state[first + k * layer.threads] = v[k];
      }
    }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= call.rows) {
    return;
  }
  let l = batch.first_layer + gid.y;
  let info = infos[l];
  var s = vec4<f32>(0.0);
  for (var i = 0u; i < info.workgroups; i++) {
    s += partials[info.partial_base + i * info.max_rows + t];  // neighbours read neighbours
  }
  out[(call.dst_row + t) * batch.layers + l] = vec4<f32>(sqrt(s.x), s.y * info.inv_gate, sqrt(s.z), s.w);
}
