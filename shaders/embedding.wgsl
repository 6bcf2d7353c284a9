// embedding: the token embedding gather.
//
//   out[t, :] = table[min(ids[t], V - 1), :]
//
// Symbols: T = tokens, D = d_model (hidden size), V = vocabulary size. An id ≥ V is clamped to
// V - 1 so that no read leaves the table; the CPU validates ids before upload, so a clamp only
// ever hides a bug there (embedding.ts validateTokenIds). One thread per output element; the
// workgroups may be laid out in 2-D (x fastest) to stay within 65535 per dimension.

//
// The table is bound as u32 words: fp32 bits, or with W_F16 packed halves (element e in word
// e >> 1, half e & 1; app/kernels/f16.ts), unpacked with unpack2x16float.

override WORKGROUP_SIZE: u32 = 256u;
override W_F16: bool = false;

struct Params {
  tokens: u32,  // T
  dim: u32,     // D
  vocab: u32,   // V
  _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;            // [T] token ids
@group(0) @binding(2) var<storage, read> table: array<u32>;          // [V, D] embedding weight (f32 bits, or packed halves with W_F16)
@group(0) @binding(3) var<storage, read_write> output: array<f32>;   // [T, D]

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let index = (wg.y * groups.x + wg.x) * WORKGROUP_SIZE + lid;
  if (index >= params.tokens * params.dim) {
    return;
  }
  let t = index / params.dim;
  let d = index - t * params.dim;
  let id = min(ids[t], params.vocab - 1u);
  let e = id * params.dim + d;
  if (W_F16) {
    let pair = unpack2x16float(table[e >> 1u]);
    output[index] = select(pair.x, pair.y, (e & 1u) == 1u);
  } else {
    output[index] = bitcast<f32>(table[e]);
  }
}
