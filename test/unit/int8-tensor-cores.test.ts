/**
 * offersInt8TensorCores (app/gpu/adapter.ts): when the int8 product may run on the tensor cores —
 * the H200's adapter summary as Dawn reports it with allow_unsafe_apis (bench/RESULTS.md, issue 19
 * item 1), and what each missing piece does to it.
 */
import { describe, expect, it } from 'vitest';
import { offersInt8TensorCores } from '../../app/gpu/adapter';

const h200 = {
  features: ['chromium-experimental-subgroup-matrix', 'subgroups', 'timestamp-query'],
  subgroupMatrixConfigs: [
    { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 16, K: 32 },
    { componentType: 'i8', resultComponentType: 'i32', M: 16, N: 8, K: 32 },
    { componentType: 'u8', resultComponentType: 'u32', M: 16, N: 16, K: 32 },
  ],
  subgroupMinSize: 32,
  subgroupMaxSize: 32,
};

describe('offersInt8TensorCores', () => {
  it("the H200 through Dawn's unsafe APIs: yes", () => {
    expect(offersInt8TensorCores(h200)).toBe(true);
  });

  it('no: without either feature, without the i8 16×16×32 config, or with several subgroup sizes', () => {
    expect(offersInt8TensorCores({ ...h200, features: ['subgroups'] })).toBe(false);
    expect(offersInt8TensorCores({ ...h200, features: ['chromium-experimental-subgroup-matrix'] })).toBe(false);
    expect(offersInt8TensorCores({ ...h200, subgroupMatrixConfigs: h200.subgroupMatrixConfigs.filter((c) => c.N !== 16 || c.componentType !== 'i8') })).toBe(false);
    expect(offersInt8TensorCores({ ...h200, subgroupMatrixConfigs: [] })).toBe(false);
    expect(offersInt8TensorCores({ ...h200, subgroupMinSize: 16, subgroupMaxSize: 64 })).toBe(false);
    const { subgroupMinSize: _min, subgroupMaxSize: _max, ...unsized } = h200;
    expect(offersInt8TensorCores(unsized)).toBe(false);
  });
});
