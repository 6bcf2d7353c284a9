/**
 * offersInt8TensorCores (app/gpu/adapter.ts): when the int8 product may run on the tensor cores —
 * the H200's adapter summary as Dawn reports it with allow_unsafe_apis (bench/RESULTS.md, issue 19
 * item 1), and what each missing piece does to it; and which tensor-core kernel runs on a device
 * (app/kernels/int8-gemm.ts tcKernelRefusal, defaultTcKernel) from its subgroup size and limits;
 * how many ways a product's K is split for a workgroup target (int8SplitCount).
 */
import { describe, expect, it } from 'vitest';
import { offersInt8TensorCores } from '../../app/gpu/adapter';
import type { GpuContext } from '../../app/gpu/context';
import { defaultTcKernel, int8SplitCount, int8TensorCoreRefusal, int8TensorCores, tcKernelRefusal } from '../../app/kernels/int8-gemm';
import { MATMUL_SCRATCH_ELEMENTS } from '../../app/kernels/matmul';

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

describe('the tensor-core kernel a device runs', () => {
  /** The H200's limits as the studio requests them (bench/results/2026-12-04-h200-int8-gemm/int8.json). */
  const limits = { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  const device = (l: Partial<typeof limits>) => ({ device: { limits: { ...limits, ...l } } }) as unknown as GpuContext;

  it('the H200 (subgroups of 32, 48 KiB of workgroup memory): every kernel; the wide one by default', () => {
    for (const k of ['single', 'double', 'wide', 'wide-deep', 'quad', 'big'] as const) expect(tcKernelRefusal(device({}), { subgroupSize: 32 }, k)).toBeNull();
    expect(defaultTcKernel(device({}), { subgroupSize: 32 })).toBe('wide');
  });

  it('32 KiB of workgroup memory (the common tier): not the wide kernel (40 KiB), the double-buffered one', () => {
    const small = device({ maxComputeWorkgroupStorageSize: 32768 });
    expect(tcKernelRefusal(small, { subgroupSize: 32 }, 'wide')).toMatch(/the wide tensor-core kernel needs 40960 bytes of workgroup memory, this device allows 32768/);
    expect(tcKernelRefusal(small, { subgroupSize: 32 }, 'wide-deep')).toMatch(/the wide-deep tensor-core kernel needs 40960 bytes/);
    expect(defaultTcKernel(small, { subgroupSize: 32 })).toBe('double');
    // int8_gemm_big.wgsl: 256 × 128 tiles take 2 · (256 + 128) rows of 48 bytes and 8 results of 1 KiB; 128 × 128, 2 · 256 · 48 + 4 KiB.
    expect(tcKernelRefusal(small, { subgroupSize: 32 }, 'big')).toMatch(/the big tensor-core kernel needs 45056 bytes of workgroup memory, this device allows 32768/);
    expect(tcKernelRefusal(small, { subgroupSize: 32 }, 'quad')).toBeNull();
    expect(tcKernelRefusal(device({ maxComputeWorkgroupStorageSize: 28671 }), { subgroupSize: 32 }, 'quad')).toMatch(/needs 28672 bytes/);
  });

  it('workgroups of fewer than 256 invocations: not the wide kernels; the double-buffered one takes 128', () => {
    expect(tcKernelRefusal(device({ maxComputeInvocationsPerWorkgroup: 128 }), { subgroupSize: 32 }, 'wide')).toMatch(/the wide tensor-core kernel needs workgroups of 256 invocations/);
    expect(tcKernelRefusal(device({ maxComputeWorkgroupSizeX: 128 }), { subgroupSize: 32 }, 'wide-deep')).toMatch(/workgroups of 256 invocations/);
    expect(defaultTcKernel(device({ maxComputeInvocationsPerWorkgroup: 128 }), { subgroupSize: 32 })).toBe('double');
    expect(tcKernelRefusal(device({ maxComputeInvocationsPerWorkgroup: 128 }), { subgroupSize: 32 }, 'big')).toMatch(/workgroups of 256 invocations/);
    expect(tcKernelRefusal(device({ maxComputeInvocationsPerWorkgroup: 128 }), { subgroupSize: 32 }, 'quad')).toBeNull();
  });

  it("WebGPU's default 16 KiB of workgroup memory: no kernel (each stages 20 KiB or more), so no tensor cores and the portable kernel", () => {
    const least = device({ maxComputeWorkgroupStorageSize: 16384 });
    for (const k of ['single', 'double', 'wide', 'wide-deep', 'quad', 'big'] as const) expect(tcKernelRefusal(least, { subgroupSize: 32 }, k)).toMatch(/bytes of workgroup memory, this device allows 16384/);
    expect(tcKernelRefusal(least, { subgroupSize: 32 }, 'single')).toMatch(/the single tensor-core kernel needs 20480 bytes/);
    expect(tcKernelRefusal(device({ maxComputeWorkgroupStorageSize: 20480 }), { subgroupSize: 32 }, 'single')).toBeNull();
    expect(tcKernelRefusal(device({ maxComputeWorkgroupStorageSize: 20480 }), { subgroupSize: 32 }, 'double')).toBeNull();
    // The whole decision, on the H200's adapter with the features taken: the limit alone turns it off.
    const ctx = (l: Partial<typeof limits>) =>
      ({ adapter: h200, device: { features: new Set(['chromium-experimental-subgroup-matrix', 'subgroups']), limits: { ...limits, ...l } } }) as unknown as GpuContext;
    expect(int8TensorCores(ctx({}))).toEqual({ subgroupSize: 32 });
    expect(int8TensorCoreRefusal(ctx({}))).toBeNull();
    expect(int8TensorCores(ctx({ maxComputeWorkgroupStorageSize: 16384 }))).toBeNull();
    expect(int8TensorCoreRefusal(ctx({ maxComputeWorkgroupStorageSize: 16384 }))).toMatch(/the single tensor-core kernel needs 20480 bytes of workgroup memory, this device allows 16384/);
    const noFeature = { adapter: h200, device: { features: new Set(['subgroups']), limits } } as unknown as GpuContext;
    expect(int8TensorCores(noFeature)).toBeNull();
    expect(int8TensorCoreRefusal(noFeature)).toMatch(/offers no int8 tensor cores/);
  });

  it('subgroups of 64: the single kernel needs workgroups of 4 of them', () => {
    expect(tcKernelRefusal(device({ maxComputeInvocationsPerWorkgroup: 128 }), { subgroupSize: 64 }, 'single')).toMatch(/the single tensor-core kernel needs workgroups of 256 invocations/);
    expect(tcKernelRefusal(device({}), { subgroupSize: 64 }, 'single')).toBeNull();
  });

  it('subgroups other than 32: the single-buffered kernel only', () => {
    for (const size of [16, 64]) {
      expect(tcKernelRefusal(device({}), { subgroupSize: size }, 'double')).toMatch(new RegExp(`takes subgroups of 32, this device's are ${size}`));
      expect(tcKernelRefusal(device({}), { subgroupSize: size }, 'wide')).toMatch(/takes subgroups of 32/);
      expect(defaultTcKernel(device({}), { subgroupSize: size })).toBe('single');
    }
  });
});

describe('int8SplitCount: K split until the workgroups reach the target', () => {
  it('no target, or tiles at or above it, or one stage: not split', () => {
    expect(int8SplitCount(96, 24, undefined)).toEqual({ splits: 1, stagesPerSplit: 24 });
    expect(int8SplitCount(96, 24, 0)).toEqual({ splits: 1, stagesPerSplit: 24 });
    expect(int8SplitCount(320, 40, 256)).toEqual({ splits: 1, stagesPerSplit: 40 });
    expect(int8SplitCount(10, 1, 256)).toEqual({ splits: 1, stagesPerSplit: 1 });
  });

  it('mamba-130m out_proj at 2,048 tokens (96 wide tiles, 24 stages): 3 splits of 8; mamba-2.8b out_proj at 512 (80 tiles, 80 stages): 4 of 20', () => {
    expect(int8SplitCount(96, 24, 256)).toEqual({ splits: 3, stagesPerSplit: 8 });
    expect(int8SplitCount(80, 80, 256)).toEqual({ splits: 4, stagesPerSplit: 20 });
  });

  it('never more splits than stages, none empty, and the partials of any split within the shared scratch at a target of 256', () => {
    for (const [tiles, stages] of [[1, 3], [2, 7], [5, 100], [255, 9], [17, 40]] as const) {
      const { splits, stagesPerSplit } = int8SplitCount(tiles, stages, 256);
      expect(splits).toBeLessThanOrEqual(stages);
      expect((splits - 1) * stagesPerSplit).toBeLessThan(stages);
      expect(splits * stagesPerSplit).toBeGreaterThanOrEqual(stages);
      // M · N ≤ tiles · 128²: the partials' elements.
      expect(splits * tiles * 128 * 128).toBeLessThanOrEqual(MATMUL_SCRATCH_ELEMENTS);
    }
  });
});
