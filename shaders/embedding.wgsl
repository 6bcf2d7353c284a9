// embedding: the token embedding gather.
//
//   out[t, :] = table[min(ids[t], V - 1), :]
//
// A table split into row ranges (app/model/memory.ts weightParts) runs once per range, each
// dispatch writing the tokens whose rows it holds (first_row, rows).
//
// Symbols: T = tokens, D = d_model (hidden size), V = vocabulary size. An id ≥ V is clamped to
// V - 1 so that no read leaves the table; the CPU validates ids before upload, so a clamp only
// ever hides a bug there (embedding.ts validateTokenIds). One thread per output element; the
// workgroups may be laid out in 2-D (x fastest) to stay within 65535 per dimension.

//
// The table is bound as u32 words in any format of app/kernels/weight-format.ts (W_FORMAT),
// decoded by shaders/weights.wgsl, which app/kernels/embedding.ts prepends to this file.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  tokens: u32,     // T
  dim: u32,        // D
  vocab: u32,      // V
  first_row: u32,  // the table holds rows first_row .. first_row + rows − 1 (a part of a split table)
  rows: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;            // [T] token ids
@group(0) @binding(2) var<storage, read> table: array<u32>;          // [V, D] embedding weight in W_FORMAT
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
  // A part of a split table writes the tokens whose rows it holds.
  if (id < params.first_row || id - params.first_row >= params.rows) {
    return;
  }
  output[index] = w_at((id - params.first_row) * params.dim + d);
}

/** Word i of the table (for weights.wgsl). */
fn w_word(i: u32) -> u32 {
  return table[i];
}

/** Words 4q .. 4q + 3 of W (for weights.wgsl). */
fn w_quad(q: u32) -> vec4<u32> {
  return vec4<u32>(table[4u * q], table[4u * q + 1u], table[4u * q + 2u], table[4u * q + 3u]);
}
