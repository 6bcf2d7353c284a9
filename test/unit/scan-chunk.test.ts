/**
 * scanChunkLength (app/kernels/selective-scan.ts): how Mamba-1's parallel prefill scan cuts a
 * prefill into chunks — one pass where the channels' lanes fill the GPU, else as few chunks as do,
 * never shorter than the length the models size their chunk summaries for.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../app/gpu/context';
import { DEFAULT_CHUNK_LENGTH, MAX_CHUNK_LENGTH, scanChunkLength, selectiveScanSummaryElements } from '../../app/kernels/selective-scan';

const plain = {} as GpuContext;
const forced = (scanChunk: number) => ({ tuning: { scanChunk } }) as unknown as GpuContext;

describe('scanChunkLength', () => {
  it('mamba-2.8b (5,120 channels × 16 lanes = 81,920): one pass over the whole prefill', () => {
    for (const T of [100, 2048, 8192]) expect(scanChunkLength(plain, T, 5120, 16)).toBeGreaterThanOrEqual(T);
    expect(scanChunkLength(plain, 1_000_000, 5120, 16)).toBe(MAX_CHUNK_LENGTH);
  });

  it('mamba-130m (1,536 × 16 = 24,576 lanes): six chunks, a multiple of 16 tokens each', () => {
    const L = scanChunkLength(plain, 2048, 1536, 16);
    expect(L % 16).toBe(0);
    expect(Math.ceil(2048 / L)).toBe(6);
    expect(Math.ceil(8192 / scanChunkLength(plain, 8192, 1536, 16))).toBe(6);
  });

  it('lanes count the states a channel rounded up to a power of two, at most 32', () => {
    // 4,096 × 16 = 65,536 lanes: one pass; 4,096 × 8 = 32,768: four chunks; N = 200 has 32 lanes (4,096 × 32).
    expect(scanChunkLength(plain, 4096, 4096, 16)).toBeGreaterThanOrEqual(4096);
    expect(Math.ceil(4096 / scanChunkLength(plain, 4096, 4096, 8))).toBe(4);
    expect(scanChunkLength(plain, 4096, 4096, 200)).toBeGreaterThanOrEqual(4096);
  });

  it('never below the default length, so the summaries sized for it hold every choice', () => {
    for (const [T, Di, N] of [[100, 5, 16], [7, 3, 4], [2048, 24, 16], [70000, 768, 16]] as const) {
      const L = scanChunkLength(plain, T, Di, N);
      expect(L).toBeGreaterThanOrEqual(DEFAULT_CHUNK_LENGTH);
      expect(selectiveScanSummaryElements(T, Di, N, L)).toBeLessThanOrEqual(selectiveScanSummaryElements(T, Di, N));
    }
  });

  it("the software adapter's serial scan keeps chunks of the default length unless forced", () => {
    expect(scanChunkLength(plain, 2048, 5120, 16, true)).toBe(DEFAULT_CHUNK_LENGTH);
    expect(scanChunkLength(forced(256), 2048, 5120, 16, true)).toBe(256);
  });

  it('a forced length (bench --scan-chunk) wins, raised to the default where shorter', () => {
    expect(scanChunkLength(forced(256), 2048, 5120, 16)).toBe(256);
    expect(scanChunkLength(forced(16), 2048, 5120, 16)).toBe(DEFAULT_CHUNK_LENGTH);
  });
});
