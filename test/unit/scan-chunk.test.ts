/**
 * scanChunkLength (app/kernels/selective-scan.ts): how Mamba-1's parallel prefill scan cuts a
 * prefill into chunks — one pass where the channels' lanes fill the GPU, else as few chunks as do,
 * never shorter than the length the models size their chunk summaries for.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../app/gpu/context';
import { CHANNEL_MAX_STATES, DEFAULT_CHUNK_LENGTH, MAX_CHUNK_LENGTH, prefillScanKind, scanChunkLength, scanStateLanes, selectiveScanSummaryElements } from '../../app/kernels/selective-scan';

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
    expect(scanChunkLength(plain, 2048, 5120, 16, 'serial')).toBe(DEFAULT_CHUNK_LENGTH);
    expect(scanChunkLength(forced(256), 2048, 5120, 16, 'serial')).toBe(256);
  });

  it('a forced length (bench --scan-chunk) wins, raised to the default where shorter', () => {
    expect(scanChunkLength(forced(256), 2048, 5120, 16)).toBe(256);
    expect(scanChunkLength(forced(16), 2048, 5120, 16)).toBe(DEFAULT_CHUNK_LENGTH);
  });

  it('the channel scan (a thread a channel) is always cut into chunks: ~131,072 threads, chunks of ≥ 64 tokens in 16s', () => {
    // mamba-2.8b: 5,120 channels → 26 chunks wanted → 2,048 / 26 = 78.8 → 80 tokens (26 chunks); mamba-130m: 1,536 → 86 wanted → 64 (the floor).
    expect(scanChunkLength(plain, 2048, 5120, 16, 'channel')).toBe(80);
    expect(Math.ceil(8192 / scanChunkLength(plain, 8192, 5120, 16, 'channel'))).toBe(26);
    expect(scanChunkLength(plain, 2048, 1536, 16, 'channel')).toBe(DEFAULT_CHUNK_LENGTH);
    expect(scanChunkLength(forced(256), 2048, 5120, 16, 'channel')).toBe(256);
  });

  it('lanes forced (bench --scan-lanes) count as the lanes: mamba-2.8b at 8 lanes a channel (40,960) is cut into chunks', () => {
    const lanes = (scanLanes: number) => ({ tuning: { scanLanes } }) as unknown as GpuContext;
    expect(Math.ceil(2048 / scanChunkLength(lanes(8), 2048, 5120, 16))).toBe(4);
  });
});

describe('scanStateLanes', () => {
  const lanes = (scanLanes: number) => ({ tuning: { scanLanes } }) as unknown as GpuContext;
  it('the power of two at or above d_state, at most 32, unless a parallel prefill is told fewer', () => {
    expect([4, 5, 16, 20, 64, 200].map((N) => scanStateLanes(plain, N, true))).toEqual([4, 8, 16, 32, 32, 32]);
    expect(scanStateLanes(lanes(8), 16, true)).toBe(8);
    expect(scanStateLanes(lanes(8), 16, false), 'decode keeps its lanes').toBe(16);
  });

  it('told more than the default: the default; told fewer than d_state / 8 allow: as few as hold 8 states a lane', () => {
    expect(scanStateLanes(lanes(32), 16, true)).toBe(16);
    expect(scanStateLanes(lanes(1), 16, true)).toBe(2);
    expect(scanStateLanes(lanes(2), 200, true)).toBe(32);
  });
});

describe('prefillScanKind', () => {
  const gpu = (software: boolean, prefillScan?: 'serial' | 'parallel' | 'channel') => ({ adapter: { software }, tuning: prefillScan ? { prefillScan } : undefined }) as unknown as GpuContext;
  it('serial on a software adapter, channel on a GPU (parallel past 16 states), unless asked; a kind that cannot take N falls back to parallel', () => {
    expect(prefillScanKind(gpu(true), 16)).toBe('serial');
    expect(prefillScanKind(gpu(false), 16)).toBe('channel');
    expect(prefillScanKind(gpu(false), 5)).toBe('channel');
    expect(prefillScanKind(gpu(false), CHANNEL_MAX_STATES + 1)).toBe('parallel');
    expect(prefillScanKind(gpu(false, 'parallel'), 16)).toBe('parallel');
    expect(prefillScanKind(gpu(true, 'parallel'), 16)).toBe('parallel');
    expect(prefillScanKind(gpu(false, 'channel'), CHANNEL_MAX_STATES)).toBe('channel');
    expect(prefillScanKind(gpu(true, 'channel'), 5)).toBe('channel');
    expect(prefillScanKind(gpu(false, 'channel'), CHANNEL_MAX_STATES + 1)).toBe('parallel');
    expect(prefillScanKind(gpu(true), 65)).toBe('parallel');
  });
});
