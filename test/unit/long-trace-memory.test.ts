/**
 * Issue 18's memory targets, from the long trace's memory plan (app/analysis/long-trace.ts
 * longTraceMemory, which test/gpu/long-trace.test.ts checks against what a long trace allocates:
 * the ring and the checkpoints exactly, the summaries as an upper bound): shakespeare-byte over
 * 1,000,000 bytes and a mamba-130m-shaped model over 131,072 tokens take < 1 GB of GPU memory at
 * their peak and keep < 500 MB of typed arrays in the JS heap, with the app's prefill chunk (256)
 * and the bench's (2048). The JS heap's other share (ids and token texts, ~16 bytes a token) is
 * added as measured by `bench --trace` (heap_growth_bytes).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { longTraceMemory, RING_MAX_BYTES, RING_MAX_ROWS, ringRowsOf } from '../../app/analysis/long-trace';
import { LIVE_TRACE_MAX_BYTES } from '../../app/analysis/trace';
import { randomInspection, shapeConfig } from '../../app/bench/bench';
import { canonicalConfig } from '../../app/arch/registry';
import { gpuMemoryNeed } from '../../app/model/memory';

const GB = 1e9;
const bytesModel = canonicalConfig('shakespeare-byte', JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../resources/models/shakespeare-byte/config.json'), 'utf8')));
const cases = [
  { name: 'shakespeare-byte', config: bytesModel, tokens: 1_000_000 },
  { name: 'mamba-130m shape', config: shapeConfig('mamba-130m'), tokens: 131_072 },
];

describe('long traces: the memory targets (issue 18)', () => {
  it.each(cases.flatMap((c) => [256, 2048].map((maxTokens) => ({ ...c, maxTokens }))))('$name over $tokens tokens, chunks of $maxTokens', ({ config, tokens, maxTokens }) => {
    const inspection = randomInspection(config);
    const stateBytes = gpuMemoryNeed(inspection, { maxTokens }).session - 4 * config.vocabSize;
    for (const live of [false, true]) {
      const m = longTraceMemory(config, { tokens, chunk: maxTokens, stateBytes, focus: true, live });
      console.info(
        `${config.nLayer} layers, d_inner ${config.dInner}, ${tokens} tokens, chunk ${maxTokens} (ring ${ringRowsOf(maxTokens)}), ${live ? 'live' : 'prompt'}: GPU peak ${(m.gpuPeak / 1e6).toFixed(0)} MB (ring ${(m.ring / 1e6).toFixed(0)}, summaries ≤ ${(m.summaries / 1e6).toFixed(0)}, checkpoints ${(m.checkpoints / 1e6).toFixed(0)} every ${m.every}, logits ${(m.logits / 1e6).toFixed(0)}), kept ${(m.gpuKept / 1e6).toFixed(0)} MB; JS typed arrays ${(m.heap / 1e6).toFixed(0)} MB`,
      );
      expect(m.gpuPeak).toBeLessThan(1 * GB);
      expect(m.heap + 16 * tokens).toBeLessThan(0.5 * GB);
      expect(m.every % maxTokens).toBe(0);
    }
  });
});

describe('the tap ring of a large model', () => {
  it('has fewer rows, still dividing the chunk, so that it stays within RING_MAX_BYTES', () => {
    expect(ringRowsOf(2048)).toBe(RING_MAX_ROWS);
    expect(ringRowsOf(256)).toBe(256);
    for (const [maxTokens, rowBytes] of [
      [2048, 2_670_000],
      [256, 3_000_000],
      [2048, 100_000],
      [1536, 5_000_000],
    ] as const) {
      const rows = ringRowsOf(maxTokens, rowBytes);
      expect(maxTokens % rows, `${rows} rows divide the chunk ${maxTokens}`).toBe(0);
      expect(rows * rowBytes).toBeLessThanOrEqual(RING_MAX_BYTES);
      // The most rows that do: twice as many would not fit (or would not divide the chunk).
      if (rows < Math.min(RING_MAX_ROWS, maxTokens)) expect(2 * rows * rowBytes).toBeGreaterThan(RING_MAX_BYTES);
    }
    // A chunk with no even divisor left keeps its odd rows even over the budget (a recompute's
    // chunks must start where the traced ones did).
    expect(ringRowsOf(100, 1e9)).toBe(25);
  });

  it('a mamba-2.8b-shaped live trace (64 layers, d_inner 5120) is planned under the live limit', () => {
    const config = shapeConfig('mamba-2.8b');
    const inspection = randomInspection(config);
    const stateBytes = gpuMemoryNeed(inspection, { maxTokens: 2048 }).session - 4 * config.vocabSize;
    const m = longTraceMemory(config, { tokens: 16_384, chunk: 2048, stateBytes, live: true });
    console.info(`mamba-2.8b live trace of 16,384 tokens: ring ${(m.ring / 1e6).toFixed(0)} MB, GPU peak ${(m.gpuPeak / 1e6).toFixed(0)} MB`);
    expect(m.ring).toBeLessThanOrEqual(RING_MAX_BYTES);
    expect(m.gpuPeak).toBeLessThan(LIVE_TRACE_MAX_BYTES);
  });
});
