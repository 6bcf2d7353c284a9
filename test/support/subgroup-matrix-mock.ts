/**
 * Dawn's subgroup-matrix extension stood in, so that the tensor-core kernels (int8_gemm_tc.wgsl)
 * run on an adapter without it (SwiftShader) and their results can be checked there:
 *   - the enable and diagnostic directives go; the matrix types become structs holding the whole
 *     matrix (i8 operands 4 to an i32 word, the i32 result row-major);
 *   - every load, store and multiply-accumulate becomes a function, with the layout the kernels
 *     assume of the hardware's (offsets and strides in i32 words for i8 matrices; the left operand
 *     row-major, the right one column-major: column n of K × N is row n of W; checked against the
 *     CPU on the H200 for the kernels as written);
 *   - subgroup_id and subgroup_invocation_id are derived from the local index as runs of SG
 *     invocations (the adapter's own subgroups may be smaller: SwiftShader's are 4).
 * Invocation `lane` of a virtual subgroup holds its share of each result matrix (elements lane,
 * lane + SG, …), loads the operand rows that share needs, multiplies them and stores its share, so
 * the subgroup stores the whole matrix only if all of its invocations reach the store, as the
 * hardware requires (a share a lane keeps SwiftShader's work at 1/SG of every lane doing all of
 * it). What it cannot check: the speed, and the hardware's own conventions where they differ from
 * these assumptions (only a GPU with the feature checks those: bench --int8-gemm).
 */
import type { GpuContext } from '../../app/gpu/context';
import { PipelineCache } from '../../app/gpu/pipelines';

const M = 16;
const N = 16;
const K = 32;

export function standInSubgroupMatrix(code: string): string {
  let out = code.replace('enable chromium_experimental_subgroup_matrix;', '').replace(/^diagnostic\(.*$/m, '');
  // i32 words of each matrix: the i8 operands 4 to a word (M × K, N × K), the i32 result M × N.
  const sizes = { LT: (M * K) / 4, RT: (N * K) / 4, AT: M * N };
  for (const [t, n] of Object.entries(sizes)) out = out.replace(new RegExp(`alias ${t} = subgroup_matrix_\\w+<[^>]*>;`), `struct ${t} { v: array<i32, ${n}> }`);
  out = out.replace(/,\s*@builtin\(subgroup_id\) sg: u32, @builtin\(subgroup_invocation_id\) lane: u32\) \{/g, ') {\n  let sg = lid / SG;\n  let lane = lid % SG;\n  stand_in_lane = lane;');
  const loads = new Set<string>();
  const stores = new Set<string>();
  // The pointer is to an array of i32 (`&d`) or to one array of an array of them (`&d[b]`: the
  // stand-in takes b as its first argument and reads d[b]).
  const pointer = (a: string, index: string | undefined) => (index === undefined ? { name: a, arg: '' } : { name: `${a}_blocks`, arg: `${index}, ` });
  out = out.replace(/subgroupMatrixLoad<(LT|RT), (row_major|col_major)>\(&(\w+)(?:\[([^\]]+)\])?, /g, (_, t: string, major: string, a: string, index?: string) => {
    if ((t === 'LT') !== (major === 'row_major')) throw new Error(`standInSubgroupMatrix: a ${major} ${t} load is not one the kernels use`);
    const p = pointer(a, index);
    loads.add(`${t} ${p.name}`);
    return `stand_in_load_${t}_${p.name}(${p.arg}`;
  });
  out = out.replace(/subgroupMatrixStore<row_major>\(&(\w+)(?:\[([^\]]+)\])?, /g, (_, a: string, index?: string) => {
    const p = pointer(a, index);
    stores.add(p.name);
    return `stand_in_store_${p.name}(${p.arg}`;
  });
  out = out.replace(/subgroupMatrixMultiplyAccumulate\(/g, 'stand_in_mma(');
  if (/subgroupMatrix|subgroup_matrix_(left|right|result)|subgroup_id|subgroup_invocation_id/.test(out.replace(/\/\/.*$/gm, ''))) {
    throw new Error('standInSubgroupMatrix: a subgroup-matrix construct it does not know is left');
  }
  const words = K / 4;
  // Invocation `lane` of a virtual subgroup holds, computes and stores result elements e = lane,
  // lane + SG, … (row e / N, column e % N), and loads only the operand rows those need.
  const share = `for (var e = stand_in_lane; e < ${M * N}u; e += SG)`;
  const fns = [
    '// Stand-ins (test/support/subgroup-matrix-mock.ts).',
    'var<private> stand_in_lane: u32;',
    `fn stand_in_mma(a: LT, b: RT, c: AT) -> AT {
  var r = c;
  ${share} {
    let m = e / ${N}u;
    let n = e % ${N}u;
    var acc = r.v[e];
    for (var w = 0u; w < ${words}u; w++) {
      acc += dot4I8Packed(bitcast<u32>(a.v[m * ${words}u + w]), bitcast<u32>(b.v[n * ${words}u + w]));
    }
    r.v[e] = acc;
  }
  return r;
}`,
  ];
  // name_blocks: the stand-in of a pointer into an array of arrays, block b's array.
  const target = (a: string) => (a.endsWith('_blocks') ? { param: 'b: u32, ', array: `${a.slice(0, -'_blocks'.length)}[b]` } : { param: '', array: a });
  for (const l of loads) {
    const [t, a] = l.split(' ') as [string, string];
    const { param, array } = target(a);
    // The left operand's row m of e, the right one's row (W's row: column n of K × N) n of e.
    const row = t === 'LT' ? `e / ${N}u` : `e % ${N}u`;
    fns.push(`fn stand_in_load_${t}_${a}(${param}offset: u32, stride: u32) -> ${t} {
  var r: ${t};
  ${share} {
    let i = ${row};
    for (var w = 0u; w < ${words}u; w++) {
      r.v[i * ${words}u + w] = ${array}[offset + i * stride + w];
    }
  }
  return r;
}`);
  }
  for (const a of stores) {
    const { param, array } = target(a);
    fns.push(`fn stand_in_store_${a}(${param}offset: u32, c: AT, stride: u32) {
  ${share} {
    ${array}[offset + (e / ${N}u) * stride + e % ${N}u] = c.v[e];
  }
}`);
  }
  return `${out}\n${fns.join('\n')}\n`;
}

/**
 * A context in which `ctx`'s adapter seems to offer int8 tensor cores (the feature, the i8
 * 16 × 16 × 32 config, subgroups of 32) and whose pipelines compile the tensor-core shader with
 * the stand-ins: int8Gemm's tensor-core path (its grid, params, splits and kernels) then runs for
 * real on an adapter without them. For tests only.
 */
export function standInTensorCoreContext(ctx: GpuContext): GpuContext {
  const feature = 'chromium-experimental-subgroup-matrix';
  const real = ctx.device;
  const features = new Set<string>([...real.features, feature]);
  const device = new Proxy(real, {
    get(target, property) {
      if (property === 'features') return features;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  // One cache of stand-in pipelines a device, kept across calls: SwiftShader takes ~5 s to compile
  // each tensor-core kernel with its stand-ins, and every test of a file asks for them again.
  let pipelines = standInPipelines.get(real);
  if (!pipelines) {
    pipelines = new StandInPipelines(real);
    standInPipelines.set(real, pipelines);
  }
  return {
    ...ctx,
    device,
    adapter: { ...ctx.adapter, features: [...ctx.adapter.features, feature], subgroupMatrixConfigs: [{ componentType: 'i8', resultComponentType: 'i32', M, N, K }], subgroupMinSize: 32, subgroupMaxSize: 32 },
    pipelines,
  };
}

/** Compiles the tensor-core shader with the stand-ins, any other as it is. */
class StandInPipelines extends PipelineCache {
  override get(key: Parameters<PipelineCache['get']>[0]): GPUComputePipeline {
    return super.get(key.code.includes('chromium_experimental_subgroup_matrix') ? { ...key, code: standInSubgroupMatrix(key.code) } : key);
  }
}

const standInPipelines = new WeakMap<GPUDevice, StandInPipelines>();
