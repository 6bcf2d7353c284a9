/**
 * Sessions and opened traces in the web build (issue 15): trace the bundled selective-copy model
 * on a short prompt, pick layer 1, hover a Δ cell and zoom the Δ heatmap; save the session (a download) and export
 * the trace; reload the page and open the session file through the picker: the same layer is
 * selected and the same cell reads the same value (which is also the exported file's number at
 * that cell, read here by the project's safetensors reader). Reload again and drop the exported
 * trace .safetensors with no model loaded: the panels show it read-only, the same value under the
 * cursor, and the panels that need the model say so. A hostile session file gives an error
 * naming it and leaves the open trace as it was. Defect 11: a user model opened twice is listed
 * once, named from its config, and is still listed after a reload (IndexedDB).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorBytes, toFloat32 } from '../../app/formats/safetensors';
import { memorySource } from '../../app/formats/source';
import { cellCentre, fullView } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';
import { writeTinyModel } from '../support/tiny-model';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';

const artifacts = path.resolve(import.meta.dirname, '../../test-results');
const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1000 }, pageErrors, (p) => (page = p));

const IDS = [1, 0, 0, 2, 0, 3, 17, 17];
const T = IDS.length;
const Di = 256;
const TOKEN = 5;
const CHANNEL = 17;

/** Hovers (token, channel) of the Δ heatmap and returns the readout's layer and value. */
async function hoverDelta(p: Page, token: number, channel: number) {
  await p.mouse.move(0, 0);
  await p.getByTestId('heatmap-canvas').evaluate((el) => el.scrollIntoView({ block: 'center' }));
  const box = (await p.getByTestId('heatmap-canvas').boundingBox())!;
  const at = cellCentre(fullView(T), Di, token, channel, box.width, box.height);
  await p.mouse.move(box.x + at.x, box.y + at.y);
  const span = p.getByTestId('heatmap-readout').locator('span[data-token]');
  await expect.poll(() => span.getAttribute('data-token').catch(() => null)).toBe(String(token));
  expect(await span.getAttribute('data-channel')).toBe(String(channel));
  return { layer: Number(await span.getAttribute('data-layer')), value: Number(await span.getAttribute('data-value')) };
}

async function download(p: Page, button: string, to: string): Promise<string> {
  const [file] = await Promise.all([p.waitForEvent('download'), p.getByRole('button', { name: button }).click()]);
  await file.saveAs(to);
  return file.suggestedFilename();
}

async function openSessionFile(p: Page, file: string) {
  const [chooser] = await Promise.all([p.waitForEvent('filechooser'), p.getByRole('button', { name: 'Open trace or session…' }).click()]);
  await chooser.setFiles(file);
}

/** Drops a file from the disk onto the window (as a user dragging it from a file manager). */
async function dropFile(p: Page, file: string) {
  const data = await p.evaluateHandle(
    ({ b64, name }) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name));
      return transfer;
    },
    { b64: readFileSync(file).toString('base64'), name: path.basename(file) },
  );
  await p.locator('.app').dispatchEvent('drop', { dataTransfer: data });
}

const reload = async (p: Page) => {
  await p.reload();
  await expect.poll(() => p.getByRole('option', { name: /Selective copying/ }).count(), { timeout: 30_000 }).toBe(1);
};

describe('sessions and opened traces in Chromium', () => {
  it('saves a session, reopens it after a reload with the same values, and opens an exported trace without a model', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    const dir = mkdtempSync(path.join(tmpdir(), 'sessions-e2e-'));
    const started = Date.now();

    await expect.poll(() => p.getByTestId('gpu-status').textContent(), { timeout: 60_000 }).toMatch(/^WebGPU: (?!looking)\S+/);
    await p.getByRole('option', { name: /Selective copying/ }).click();
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
    await fillTraceBox(p, IDS.join(', '));
    await p.getByLabel('Prompt', { exact: true }).fill('1, 2, 3');
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, `${T} tokens · 2 layers · d_inner ${Di}`, pageErrors, 120_000);
    await p.getByLabel('Layer', { exact: true }).selectOption('1');
    const before = await hoverDelta(p, TOKEN, CHANNEL);
    expect(before.layer).toBe(1);
    expect(Number.isFinite(before.value)).toBe(true);

    // Zoom the Δ heatmap on both axes: the session keeps the zoom.
    await p.getByRole('button', { name: 'Δ heatmap: zoom in', exact: true }).click();
    await p.getByRole('button', { name: /^Δ heatmap: zoom \S+ in$/ }).click();
    const viewOf = () => p.getByTestId('heatmap-view').evaluate((el) => ['data-x-start', 'data-x-count', 'data-y-start', 'data-y-count'].map((a) => Number(el.getAttribute(a))));
    const zoomed = await viewOf();
    expect(zoomed).toEqual([T / 4, T / 2, Di / 4, Di / 2]);

    const sessionFile = path.join(dir, 'saved.mamba-session');
    expect(await download(p, 'Save session', sessionFile)).toMatch(/\.mamba-session$/);
    const traceFile = path.join(dir, 'exported.safetensors');
    await download(p, 'Export trace (safetensors)', traceFile);
    // The exported file's own number at that cell (read by the project's reader, not the app).
    const bytes = new Uint8Array(readFileSync(traceFile));
    const source = memorySource('exported.safetensors', bytes);
    const info = (await readSafetensorsHeader(source)).tensors.get('layers.1.delta')!;
    const fileValue = toFloat32(info, await readTensorBytes(source, info))[TOKEN * Di + CHANNEL]!;
    expect(Math.abs(before.value - fileValue)).toBeLessThanOrEqual(1e-6 * Math.abs(fileValue) + 1e-9);

    // Reload: nothing loaded, nothing traced. Open the session: the same layer, the same value.
    await reload(p);
    await openSessionFile(p, sessionFile);
    await expect.poll(() => p.getByTestId('opened-trace-file').textContent().catch(() => '')).toBe('saved.mamba-session');
    expect(await p.getByLabel('Layer', { exact: true }).inputValue()).toBe('1');
    expect(await p.getByTestId('opened-trace-model').textContent()).toMatch(/Selective copying .*\(bundled\)/);
    await expect.poll(viewOf).toEqual(zoomed);
    await p.getByRole('button', { name: 'Δ heatmap: reset view', exact: true }).click();
    const reopened = await hoverDelta(p, TOKEN, CHANNEL);
    expect(reopened).toEqual(before);

    // A hostile session file: an error naming it; the opened trace stays.
    const bad = path.join(dir, 'broken.mamba-session');
    writeFileSync(bad, Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"__metadata__":')]));
    await openSessionFile(p, bad);
    await expect.poll(() => p.getByRole('alert').allTextContents().then((t) => t.join(' '))).toMatch(/broken\.mamba-session/);
    expect(await p.getByTestId('opened-trace-file').textContent()).toBe('saved.mamba-session');

    // The session's prompts come back into the boxes once the model is loaded.
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
    expect(await p.getByLabel('Input to trace').inputValue()).toBe(IDS.join(', '));
    expect(await p.getByLabel('Prompt', { exact: true }).inputValue()).toBe('1, 2, 3');

    // Reload, and drop the exported trace: no model loaded, the panels show it read-only.
    await reload(p);
    await dropFile(p, traceFile);
    await expect.poll(() => p.getByTestId('opened-trace-file').textContent().catch(() => '')).toBe('exported.safetensors');
    expect(await p.getByTestId('load-done').count()).toBe(0);
    await expect.poll(() => p.getByTestId('token-strip').locator('[data-score]').count()).toBe(T);
    await p.getByLabel('Layer', { exact: true }).selectOption('1');
    expect(await hoverDelta(p, TOKEN, CHANNEL)).toEqual(before);
    expect(await p.getByTestId('bc-readout').count()).toBe(1);
    mkdirSync(artifacts, { recursive: true });
    await p.screenshot({ path: path.join(artifacts, 'sessions-opened-trace.png'), fullPage: true });
    const unavailable = await p.getByTestId('opened-trace-unavailable').allTextContents();
    expect(unavailable.join('\n')).toMatch(/Hidden attention: Needs the model on the GPU/);
    expect(unavailable.join('\n')).toMatch(/Knockout: Needs the model on the GPU/);

    // Defect 11: a user model opened twice is one entry with a real name, still there after a reload.
    const model = writeTinyModel(path.join(dir, 'tiny'));
    const files = ['config.json', 'model.safetensors'].map((f) => path.join(model, f));
    for (let i = 0; i < 2; i++) {
      const [chooser] = await Promise.all([p.waitForEvent('filechooser'), p.getByRole('button', { name: 'Open model…' }).click()]);
      await chooser.setFiles(files);
      await expect.poll(() => p.getByRole('option', { name: /mamba · model\.safetensors/ }).count()).toBe(1);
    }
    await reload(p);
    await expect.poll(() => p.getByRole('option', { name: /mamba · model\.safetensors/ }).count(), { timeout: 10_000 }).toBe(1);
    // Remove (web mode has it now): gone, and gone after a reload.
    await p.getByRole('button', { name: /Remove mamba · model\.safetensors/ }).click();
    await expect.poll(() => p.getByRole('option', { name: /mamba · model\.safetensors/ }).count()).toBe(0);
    await reload(p);
    expect(await p.getByRole('option', { name: /mamba · model\.safetensors/ }).count()).toBe(0);

    console.info(`[e2e] sessions: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 240_000);
});
