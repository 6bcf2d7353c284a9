/**
 * renderer/src/panels/blocks.ts: how the panels name a hybrid's blocks, and one sequence's memory
 * against its context length (KV caches growing linearly from their fixed part, the SSM state
 * constant), checked against the values written out by hand.
 */
import { describe, expect, it } from 'vitest';
import { blockCounts, blockLabel, byteUnit, isHybrid, memoryGrowth } from '../../renderer/src/panels/blocks';

const blocks = [
  { kind: 'ssm' as const, layer: 0 },
  { kind: 'attention' as const, layer: 1 },
  { kind: 'mlp' as const, layer: 2 },
  { kind: 'ssm' as const, layer: 3 },
];

describe('panel blocks', () => {
  it('names blocks by kind, SSM blocks as a pure Mamba’s layers', () => {
    expect([0, 1, 2, 3].map((l) => blockLabel(blocks, l))).toEqual(['layer 0', 'layer 1 · attention', 'layer 2 · MLP', 'layer 3']);
    expect(blockLabel(undefined, 5)).toBe('layer 5');
    expect(isHybrid(blocks)).toBe(true);
    expect(isHybrid([{ kind: 'ssm', layer: 0 }])).toBe(false);
    expect(isHybrid(undefined)).toBe(false);
    expect(blockCounts(blocks)).toBe('2 SSM, 1 attention, 1 MLP');
  });

  it('picks a byte unit that shows the largest value as a number ≥ 1', () => {
    expect(byteUnit(999).name).toBe('B');
    expect(byteUnit(1024).name).toBe('KiB');
    expect(byteUnit(3 * 2 ** 20 + 1).name).toBe('MiB');
    expect(byteUnit(5 * 2 ** 30)).toEqual({ name: 'GiB', bytes: 2 ** 30 });
  });

  it('grows the KV caches linearly up to their capacity beside a constant SSM state', () => {
    // 2 attention blocks × (2 KV heads × 16 dims × 2 (k, v) + 1 mask word) × 4 bytes = 520 bytes a token.
    const g = memoryGrowth({ capacity: 512, bytesPerToken: 520, fixedBytes: 16 }, 40_000, 64);
    expect(g.unit.name).toBe('KiB'); // 16 + 520·512 = 266,256 bytes
    expect(g.step).toBe(8);
    expect(g.tokens.length).toBe(65);
    expect(g.tokens[0]).toBe(0);
    expect(g.tokens[64]).toBe(512);
    expect(g.kv[0]! * 1024).toBeCloseTo(16, 9);
    expect(g.kv[10]! * 1024).toBeCloseTo(16 + 520 * 80, 9);
    expect(g.kv[64]! * 1024).toBeCloseTo(16 + 520 * 512, 9);
    expect(new Set(g.ssm)).toEqual(new Set([40_000 / 1024]));
    // Fewer tokens than points: one point a token; a capacity that is not a multiple: evenly spaced, the last at the capacity.
    expect(memoryGrowth({ capacity: 5, bytesPerToken: 1, fixedBytes: 0 }, 0, 64).tokens).toEqual([0, 1, 2, 3, 4, 5]);
    const odd = memoryGrowth({ capacity: 100, bytesPerToken: 2, fixedBytes: 0 }, 7, 64);
    expect(odd.tokens.length).toBe(65);
    expect(odd.tokens[64]).toBe(100);
    expect(odd.tokens[32]).toBeCloseTo(50, 12);
    expect(() => memoryGrowth({ capacity: 0, bytesPerToken: 1, fixedBytes: 0 }, 0)).toThrow(/KV cache of 0 tokens/);
  });
});
