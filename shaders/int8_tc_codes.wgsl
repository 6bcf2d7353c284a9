// int8_tc_codes: the codes qa and qw of the kernels that stage them through workgroup memory
// (int8_gemm_tc.wgsl, int8_gemm_big.wgsl), bound as vec4 (one 128-bit load an invocation), and
// their reads (each kernel's KV: vec4 a staged row); appended by app/kernels/int8-gemm.ts with
// int8_tc_common.wgsl. qa [M_pad, K_pad] and qw [N_pad, K_pad]: int8 codes, 4 an i32 word.

@group(0) @binding(1) var<storage, read> qa: array<vec4<i32>>;
@group(0) @binding(2) var<storage, read> qw: array<vec4<i32>>;

// The vec4 of qa / qw holding a stage's vec4 t (words 4·(t % KV) .. + 3 of tile
// row t / KV) for the tile's first row `row0`, rows of kv4 vec4, the stage at K byte k0.
fn code_index(row0: u32, kv4: u32, k0: u32, t: u32) -> u32 {
  return (row0 + t / KV) * kv4 + k0 / 16u + t % KV;
}

// qa's / qw's vec4 at code_index, clamped to the buffer (rows past a 128 tile's padding).
fn qa_at(i: u32) -> vec4<i32> {
  return qa[min(i, arrayLength(&qa) - 1u)];
}

fn qw_at(i: u32) -> vec4<i32> {
  return qw[min(i, arrayLength(&qw) - 1u)];
}
