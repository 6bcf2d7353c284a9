
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
