/**
 * Waiting for a trace in the web app's e2e tests. When the trace's stats line does not show the
 * expected text in time, the error says what the page showed instead (the Trace button, the hint
 * beside it, errors and alerts, the trace box, the load and GPU status) and the page's errors, so
 * a failure in CI can be told apart: a blocked click, a failed trace, a crash, or a slow machine.
 */
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

const text = async (p: Page, testId: string) => {
  const found = p.getByTestId(testId);
  const n = await found.count().catch(() => -1);
  if (n === 0) return '(absent)';
  if (n < 0) return '(unreadable)';
  return (await found.allTextContents()).map((t) => JSON.stringify(t)).join(' | ') + (n > 1 ? ` (${n} elements)` : '');
};

/** A few lines on what the page shows about traces, for an error message. */
async function traceState(p: Page, pageErrors: readonly string[]): Promise<string> {
  const alerts = await p.locator('[role=alert], .error').allTextContents().catch(() => ['(unreadable)']);
  const box = await p.getByLabel('Input to trace').inputValue({ timeout: 1000 }).catch(() => '(absent)');
  const button = await p.locator('button.primary').allTextContents().catch(() => []);
  return [
    `trace-stats: ${await text(p, 'trace-stats')}`,
    `trace-hint: ${await text(p, 'trace-hint')}`,
    `trace progress: ${await text(p, 'trace-progress')}`,
    `primary buttons: ${button.map((b) => JSON.stringify(b)).join(', ')}`,
    `trace box: ${JSON.stringify(box)}`,
    `load-done: ${await text(p, 'load-done')}; gpu-status: ${await text(p, 'gpu-status')}`,
    `alerts and errors: ${alerts.map((a) => JSON.stringify(a)).join(' | ') || 'none'}`,
    `page errors: ${pageErrors.length > 0 ? pageErrors.join('\n  ') : 'none'}`,
  ].join('\n');
}

/** Waits until the trace stats read `expected`; on a timeout fails with what the page showed (traceState). */
export async function expectTraceStats(p: Page, expected: string | RegExp, pageErrors: readonly string[], timeout = 120_000): Promise<void> {
  const read = () =>
    p
      .getByTestId('trace-stats')
      .textContent({ timeout: 2000 })
      .catch(() => '');
  try {
    if (typeof expected === 'string') await expect.poll(read, { timeout }).toBe(expected);
    else await expect.poll(read, { timeout }).toMatch(expected);
  } catch (error) {
    const state = await traceState(p, pageErrors).catch((e: unknown) => `(page state unreadable: ${String(e)})`);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nWhat the page showed:\n${state}`, { cause: error });
  }
}

/**
 * Types `text` into the trace box (Playwright waits while it is read-only: the model's suggested
 * prompt not read yet) and checks that the box then holds exactly it, not the suggestion run into it.
 */
export async function fillTraceBox(p: Page, text: string): Promise<void> {
  const box = p.getByLabel('Input to trace');
  await box.fill(text);
  expect(await box.inputValue(), 'the trace box holds what was typed').toBe(text);
}
