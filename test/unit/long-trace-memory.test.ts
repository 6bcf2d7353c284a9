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
import { longTraceMemory, ringRowsOf } from '../../app/analysis/long-trace';
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
      const m = longTraceMemory(config, { tokens, maxTokens, stateBytes, focus: true, live });
      console.info(
        `${config.nLayer} layers, d_inner ${config.dInner}, ${tokens} tokens, chunk ${maxTokens} (ring ${ringRowsOf(maxTokens)}), ${live ? 'live' : 'prompt'}: GPU peak ${(m.gpuPeak / 1e6).toFixed(0)} MB (ring ${(m.ring / 1e6).toFixed(0)}, summaries ≤ ${(m.summaries / 1e6).toFixed(0)}, checkpoints ${(m.checkpoints / 1e6).toFixed(0)} every ${m.every}, logits ${(m.logits / 1e6).toFixed(0)}), kept ${(m.gpuKept / 1e6).toFixed(0)} MB; JS typed arrays ${(m.heap / 1e6).toFixed(0)} MB`,
      );
      expect(m.gpuPeak).toBeLessThan(1 * GB);
      expect(m.heap + 16 * tokens).toBeLessThan(0.5 * GB);
      expect(m.every % maxTokens).toBe(0);
    }
  });
});
