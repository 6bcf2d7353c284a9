/**
 * Issue 17, item 2, in the web build: the load panel shows the memory plan of the picked model
 * before anything is loaded ("needs … MB: weights …, state …, activations …, trace …"), plans
 * again when the GPU weights choice changes, and the weights it planned are what loading puts on
 * the GPU (the "On the GPU" line, in binary units). The prefill choice is fp32, its int8 option
 * disabled on SwiftShader (no int8 tensor cores), and the load line says which prefill runs; the
 * line's title names the prefill chunk planned.
 */
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';

const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 800 }, pageErrors, (p) => (page = p));

const PLAN = /^needs ([\d.]+) MB: weights ([\d.]+), state ([\d.]+), activations ([\d.]+), trace ([\d.]+)/;

async function plannedWeightsMb(p: Page): Promise<number> {
  await expect.poll(() => p.getByTestId('memory-plan').textContent(), { timeout: 30_000 }).toMatch(PLAN);
  return Number(PLAN.exec((await p.getByTestId('memory-plan').textContent()) ?? '')?.[2]);
}

describe('the memory plan in the load panel', () => {
  it('shows the plan before loading, re-plans for f16, and plans the weights that load', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await expect.poll(() => p.getByTestId('gpu-selftest').textContent(), { timeout: 60_000 }).toMatch(/GPU check passed/);
    // The plan line of the model picked before, if another was: the new model's plan replaces it
    // (reading the line at once after the click could still see the other model's plan).
    const option = p.getByRole('option', { name: /Shakespeare bytes/ });
    const before = (await option.getAttribute('aria-selected')) === 'true' ? null : await p.getByTestId('memory-plan').textContent({ timeout: 1000 }).catch(() => null);
    await option.click();
    const newPlan = async () => {
      const text = (await p.getByTestId('memory-plan').textContent()) ?? '';
      return text !== before && PLAN.test(text) ? text : '';
    };
    await expect.poll(newPlan, { timeout: 30_000 }).not.toBe('');
    const fp32 = await plannedWeightsMb(p);
    const text = await p.getByTestId('memory-plan').textContent();
    console.info(`[e2e] load panel: ${text}`);
    // SwiftShader's memory is not known: the plan says so rather than guessing.
    expect(text).toMatch(/ · GPU memory unknown$/);
    // Planned for the prompt's plain prefill in chunks of 2,048 tokens (memory unknown: the larger chunk; SwiftShader is a software adapter, which gets no 8,192-token chunks), analyses in 256.
    const title = (await p.getByTestId('memory-plan').getAttribute('title')) ?? '';
    expect(title).toContain('activations: a prefill chunk of 2,048 tokens; traces and analyses run in chunks of 256');
    // The largest activation buffer, which must fit one binding (it does: no "larger than one binding").
    expect(title).toMatch(/\nlargest activation: [\w.]+, [\d.]+ [KMG]?B$/);
    await p.getByLabel('GPU weights').selectOption('f16');
    // The big matrices in halves: fewer bytes planned.
    await expect.poll(() => plannedWeightsMb(p), { timeout: 30_000 }).toBeLessThan(fp32);
    await p.getByLabel('GPU weights').selectOption('f32');
    await expect.poll(() => plannedWeightsMb(p), { timeout: 30_000 }).toBe(fp32);
    // The prefill choice: fp32 by default; int8 needs tensor cores, which SwiftShader does not offer.
    expect(await p.getByLabel('Prefill products').inputValue()).toBe('fp32');
    const int8Option = p.getByLabel('Prefill products').locator('option[value="int8"]');
    expect(await int8Option.isDisabled()).toBe(true);
    expect(await int8Option.textContent()).toBe('int8 tensor cores (this GPU offers none to WebGPU)');
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
    expect(await p.getByTestId('load-done').textContent()).toMatch(/, prefill fp32, loaded in /);
    const done = /On the GPU: ([\d.]+) MB of weights/.exec((await p.getByTestId('load-done').textContent()) ?? '');
    // The load line is in MiB with one decimal, the plan in MB with two significant digits.
    const loadedMb = Number(done?.[1]) * 1.048576;
    expect(Math.abs(loadedMb - fp32)).toBeLessThanOrEqual(0.05 * 1.048576 + 0.05);
    // Another model: its own plan (selective-copy is far smaller than shakespeare-byte).
    const shakespeare = await p.getByTestId('memory-plan').textContent();
    await p.getByRole('option', { name: /Selective copying/ }).click();
    const other = async () => {
      const text = (await p.getByTestId('memory-plan').textContent()) ?? '';
      return text !== shakespeare && /^needs [\d.]+ (MB|KB): weights [\d.]+, state/.test(text) ? text : '';
    };
    await expect.poll(other, { timeout: 30_000 }).not.toBe('');
    console.info(`[e2e] load panel, selective-copy: ${await other()}`);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 180_000);
});
