/**
 * Decode rate in the web build (Chromium, WebGPU in the engine worker): the untraced decode
 * (pipelined: sampled ids fed on the GPU, read back later) must not be slower than the traced one
 * (each id read before the next step). Issue 15, defect 1: with live trace off it was ~7× slower
 * (the untraced step used the fused decode kernels, which are slow on SwiftShader).
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';

const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 800 }, pageErrors, (p) => (page = p));

const TOKENS = 24;

async function generateRate(p: Page, liveTrace: boolean): Promise<number> {
  const box = p.getByLabel('Live selection trace');
  if ((await box.isChecked()) !== liveTrace) await box.click();
  expect(await box.isChecked()).toBe(liveTrace);
  await p.getByRole('button', { name: 'Generate' }).click();
  const pattern = new RegExp(`^${TOKENS} tokens · ([\\d.]+) tokens/s · stopped: max-tokens`);
  await expect.poll(() => p.getByTestId('generation-stats').textContent(), { timeout: 240_000, interval: 100 }).toMatch(pattern);
  const stats = (await p.getByTestId('generation-stats').textContent()) ?? '';
  return Number(pattern.exec(stats)?.[1]);
}

describe('decode rate in the web build', () => {
  it(`generates ${TOKENS} tokens with live trace off at least about as fast as with it on`, async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await expect.poll(() => p.getByTestId('gpu-selftest').textContent(), { timeout: 60_000 }).toMatch(/GPU check passed/);
    await p.getByRole('option', { name: /Shakespeare bytes/ }).click();
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
    await p.getByLabel('Prompt').fill('ROMEO:');
    await p.getByLabel('Max tokens').fill(String(TOKENS));
    await p.getByLabel('Seed').fill('7');
    const on: number[] = [];
    const off: number[] = [];
    // Alternated, so a slow spell of the machine hits both; medians of three.
    for (let round = 0; round < 3; round++) {
      on.push(await generateRate(p, true));
      off.push(await generateRate(p, false));
    }
    console.info(`[e2e] ${TOKENS} tokens: live trace on ${on.join(', ')} tok/s; off ${off.join(', ')} tok/s`);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    // Margin: single runs of the same path spread by up to ~25% on a 2-core machine (traced 5.7–7.5
    // tokens/s in one file); the defect was a ratio of 0.14 (0.6 against 4.3 tokens/s).
    expect(median(off)).toBeGreaterThanOrEqual(0.7 * median(on));
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 420_000); // six runs of 24 tokens: ~25 s in all when fixed, ~4 minutes at the defect's 0.6 tokens/s
});
