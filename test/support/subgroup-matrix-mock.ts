/**
 * int8_gemm_tc.wgsl's module with Dawn's subgroup-matrix extension stood in, so that an adapter
 * without it (SwiftShader) can still resolve the rest of the shader: the enable and diagnostic
 * directives go, the matrix types become one-field structs, and each load, store and
 * multiply-accumulate a plain function over the same workgroup arrays. What this checks is that
 * every other name, type and expression of the tensor-core kernels resolves; the matrix builtins'
 * own signatures and results are only checked on a GPU that has them.
 */
export function standInSubgroupMatrix(code: string): string {
  let out = code.replace('enable chromium_experimental_subgroup_matrix;', '').replace(/^diagnostic\(.*$/m, '');
  for (const t of ['LT', 'RT', 'AT']) out = out.replace(new RegExp(`alias ${t} = subgroup_matrix_\\w+<[^>]*>;`), `struct ${t} { v: i32 }`);
  const loads = new Set<string>();
  const stores = new Set<string>();
  out = out.replace(/subgroupMatrixLoad<(LT|RT), (?:row_major|col_major)>\(&(\w+), /g, (_, t: string, a: string) => {
    loads.add(`${t} ${a}`);
    return `stand_in_load_${t}_${a}(`;
  });
  out = out.replace(/subgroupMatrixStore<(?:row_major|col_major)>\(&(\w+), /g, (_, a: string) => {
    stores.add(a);
    return `stand_in_store_${a}(`;
  });
  out = out.replace(/subgroupMatrixMultiplyAccumulate\(/g, 'stand_in_mma(');
  const fns = ['fn stand_in_mma(a: LT, b: RT, c: AT) -> AT { return AT(c.v + a.v * b.v); }'];
  for (const l of loads) {
    const [t, a] = l.split(' ') as [string, string];
    fns.push(`fn stand_in_load_${t}_${a}(offset: u32, stride: u32) -> ${t} { return ${t}(${a}[offset + stride]); }`);
  }
  for (const a of stores) fns.push(`fn stand_in_store_${a}(offset: u32, c: AT, stride: u32) { ${a}[offset + stride] = c.v; }`);
  if (/subgroupMatrix|subgroup_matrix_(left|right|result)/.test(out.replace(/\/\/.*$/gm, ''))) throw new Error('standInSubgroupMatrix: a subgroup-matrix construct it does not know is left');
  return `${out}\n${fns.join('\n')}\n`;
}
