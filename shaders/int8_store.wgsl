
// int8_store: element (m, n) of an int8 product's Y from its exact i32 sum, shared by
// int8_gemm.wgsl `gemm` and int8_gemm_tc.wgsl (appended to each by app/kernels/int8-gemm.ts; both
// declare params with offset, stride and flags, and sa, sw, bias, y at the same bindings):
//   Y[offset + m·stride + n] = acc·sa[m]·sw[n] (+ bias[n] with flags & 2) (+ the Y there with flags & 1)
fn int8_store(m: u32, n: u32, acc: i32) {
  var v = f32(acc) * sa[m] * sw[n];
  if ((params.flags & 2u) != 0u) {
    v += bias[n];
  }
  let i = params.offset + m * params.stride + n;
  if ((params.flags & 1u) != 0u) {
    v += y[i];
  }
  y[i] = v;
}

// A product whose K is split over workgroups (params.split ≠ 0: the K bytes each split takes;
// workgroup_id.z the split): split z's raw i32 sum for (m, n) goes to the partials bound as y,
// [splits, M, N] row-major, as the bits of an f32; int8_reduce.wgsl adds the splits' sums and
// then scales and writes them through int8_store. Unsplit: int8_store.
fn int8_out(m: u32, n: u32, z: u32, rows: u32, cols: u32, acc: i32) {
  if (params.split != 0u) {
    y[(z * rows + m) * cols + n] = bitcast<f32>(acc);
  } else {
    int8_store(m, n, acc);
  }
}
