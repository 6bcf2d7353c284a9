/**
 * The e2e steps the panel tests on the bundled selective-copy model share: the model's float64
 * reference (tensors read once, the reference forward of the file's prompt), loading the model in
 * the page, tracing ids and waiting for the trace, and reading a downloaded export.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { inspectModel, type ModelInspection } from '../../app/arch/inspect';
import { mamba1ForwardRef, type Mamba1RefOutput } from '../../app/arch/mamba1/reference';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { folderModelFiles } from '../../app/node/folder';

export const selectiveCopyDir = path.resolve(import.meta.dirname, '../../resources/models/selective-copy');

export interface SelectiveCopyRef {
  inspection: ModelInspection;
  table: Map<string, Float32Array>;
  /** The reference forward of the ids given to selectiveCopyReference. */
  ref: Mamba1RefOutput;
}

/** A function that reads the model and runs the float64 reference forward of `ids` on its first call, and returns that after. */
export function selectiveCopyReference(ids: readonly number[]): () => Promise<SelectiveCopyRef> {
  let made: Promise<SelectiveCopyRef> | null = null;
  return () =>
    (made ??= (async () => {
      const files = await folderModelFiles(selectiveCopyDir);
      try {
        const inspection = await inspectModel(files);
        const table = await readAllTensorsF32(files, inspection);
        return { inspection, table, ref: mamba1ForwardRef(inspection.config, (n) => table.get(n), [...ids]) };
      } finally {
        await files.close();
      }
    })());
}

/** Waits for WebGPU, picks the selective-copy model and loads it onto the GPU. */
export async function loadSelectiveCopy(p: Page, timeout = 60_000): Promise<void> {
  await expect.poll(() => p.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
  await p.getByRole('option', { name: /Selective copying/ }).click();
  await p.getByRole('button', { name: 'Load onto the GPU' }).click();
  await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout }).toMatch(/On the GPU/);
}

/** Traces `ids` (typed into the input, or the input as it is when null) and waits for the trace's stats line. */
export async function traceIds(p: Page, ids: readonly number[] | null, timeout = 60_000): Promise<void> {
  const count = ids?.length ?? (await p.getByLabel('Input to trace').inputValue()).split(',').length;
  if (ids) await p.getByLabel('Input to trace').fill(ids.join(', '));
  await p.getByRole('button', { name: 'Trace', exact: true }).click();
  await expect.poll(() => p.getByTestId('trace-stats').textContent().catch(() => ''), { timeout }).toBe(`${count} tokens · 2 layers · d_inner 256`);
}

/** Clicks the export button named `button` and returns the downloaded file's bytes. */
export async function downloadBytes(p: Page, button: string): Promise<Buffer> {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button, exact: true }).click()]);
  return readFileSync((await file.path())!);
}

/**
 * Hovers the cell at `cellAt(width, height)` of `canvas` until the readout's attributes read `want`.
 * Each try leaves the canvas, scrolls it into view, measures it where it is now and moves onto the
 * cell: a layout that shifts between measuring and moving (the panels re-render as readouts and
 * layers change, and are slower under load, and windows arrive) then costs a retry, not a hover
 * on the wrong cell.
 */
export async function hoverUntil(
  canvas: Locator,
  cellAt: (width: number, height: number) => { x: number; y: number },
  readout: Locator,
  attributes: string[],
  want: string,
  timeout = 30_000,
): Promise<{ b: { x: number; y: number; width: number; height: number }; at: { x: number; y: number } }> {
  const p = canvas.page();
  let last = { b: { x: 0, y: 0, width: 0, height: 0 }, at: { x: 0, y: 0 } };
  await expect
    .poll(
      async () => {
        await p.mouse.move(0, 0);
        await canvas.evaluate((el) => el.scrollIntoView({ block: 'center' }));
        const b = (await canvas.boundingBox())!;
        const at = cellAt(b.width, b.height);
        await p.mouse.move(b.x + at.x, b.y + at.y);
        last = { b, at };
        const read = async () => (await Promise.all(attributes.map((a) => readout.getAttribute(a, { timeout: 500 }).catch(() => null)))).join(' ');
        // The hover's re-render can trail the move: give it a moment before the next try.
        for (let i = 0; i < 10; i++) {
          const got = await read();
          if (got === want) return got;
          await p.waitForTimeout(100);
        }
        return read();
      },
      { timeout },
    )
    .toBe(want);
  return last;
}

/** Hovers the trace overview at fractions (fx, fy) of its canvas and returns its readout: the token, the layer and the summary value there. */
export async function overviewReadoutAt(p: Page, fx: number, fy: number): Promise<{ token: number; layer: number; value: number }> {
  const canvas = p.getByTestId('trace-overview-canvas');
  await canvas.evaluate((el) => el.scrollIntoView({ block: 'center' }));
  const box = (await canvas.boundingBox())!;
  await p.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
  const o = p.getByTestId('trace-overview-readout').locator('span[data-token]');
  await expect.poll(() => o.count()).toBe(1);
  const read = { token: Number(await o.getAttribute('data-token')), layer: Number(await o.getAttribute('data-layer')), value: Number(await o.getAttribute('data-value')) };
  await p.mouse.move(0, 0);
  return read;
}
