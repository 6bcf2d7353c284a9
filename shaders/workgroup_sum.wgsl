// workgroup_sum: the sum of one value per invocation over the workgroup, every invocation gets it;
// prepended by the ops whose kernels reduce a workgroup (norm-matvec.ts, layer-grid.ts, and the per-row norms through subgroups.ts withWorkgroupSum). The
// kernel declares WORKGROUP_SIZE, SG_SIZE (the subgroup size when subgroupAdd may be used, else 0:
// app/kernels/subgroups.ts, which also gives sg_add_f32) and `partial`, a workgroup array of
// WORKGROUP_SIZE f32.

/** Sum over the workgroup of `value` (every thread gets it). Uniform control flow only. */
fn workgroup_sum(value: f32, lid: u32) -> f32 {
  if (SG_SIZE > 0u) {
    // (max: SG_SIZE = 0 in the other variant, where a division by the constant 0 would not compile.)
    let sg = max(SG_SIZE, 1u);
    let s = sg_add_f32(value);
    if (lid % sg == 0u) {
      partial[lid / sg] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var k = 0u; k < WORKGROUP_SIZE / sg; k++) {
      total += partial[k];
    }
    workgroupBarrier();
    return total;
  }
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}
