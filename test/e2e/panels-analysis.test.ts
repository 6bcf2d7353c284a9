/**
 * The analysis panels in the web build (Chromium + WebGPU on whatever adapter Chromium finds):
 * load the bundled selective-copy model, trace its suggested 256-token prompt once, then
 *
 * - hidden attention: the matrix of the focus layer for one channel, computed by the engine's
 *   GPU kernel, is drawn; the α under the cursor (mouse and keyboard), a row asked for by click
 *   and by typing, and the exported CSVs equal the float64 CPU reference
 *   (app/kernels/hidden-attention.ref.ts) computed here from the model's float64 forward
 *   (app/arch/mamba1/reference.ts); the mean over channels too; a bad row shows the engine's message;
 * - compare: the trace on screen against the same prompt with one data token edited: the panel's
 *   ‖Δ_t‖ of A and B equal the reference's, B − A is their difference, and nothing before the
 *   edit changes (causality) — in layer 0 nothing outside the conv window after it either; with
 *   one token inserted instead, the tokens are aligned as a diff (one inserted column, later
 *   columns pair A's token c − 1 with B's token c), and the legend names the prompts' colours;
 *   afterwards hidden attention still reads the trace on screen (by its id), not B;
 * - knockout (on the prompt up to its first marker, traced too): filtering the first data token in
 *   the focus layer moves the next-token distribution far more (KL, TV) than filtering a noise
 *   token, and filtering it in layer 1 where that layer writes it flips the answer; the panel's
 *   baseline and knocked distributions (k = the whole vocabulary) equal the reference's softmax
 *   without and with Δ_j := 0, and its KL and TV equal those computed from them; a token outside
 *   the prompt shows the engine's message.
 *
 * Every panel exports a PNG (checked to be one) and a CSV (parsed, same numbers). Screenshots go
 * to test-results/.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { inspectModel } from '../../app/arch/inspect';
import { readAllTensorsF32 } from '../../app/formats/read-tensors';
import { hiddenAttentionRef } from '../../app/kernels/hidden-attention.ref';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { folderModelFiles } from '../../app/node/folder';
import { klDivergence, softmax, totalVariation } from '../../app/analysis/distributions';
import { causalAbsRange, matrixCellCentre, scaledAbs, topSources } from '../../renderer/src/panels/analysis';
import { parseCsv } from '../../renderer/src/panels/csv';
import { rowNorms } from '../../renderer/src/panels/memory';
import { studioHints } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';
import { downloadBytes, loadSelectiveCopy, selectiveCopyDir, selectiveCopyReference, traceIds } from '../support/selective-copy-app';
import { expectTraceStats, fillTraceBox } from '../support/trace-wait';

const root = path.resolve(import.meta.dirname, '../..');
const artifacts = path.join(root, 'test-results');
const modelDir = selectiveCopyDir;
const chromiumFound = findChromium();
const studio = JSON.parse(readFileSync(path.join(modelDir, 'studio.json'), 'utf8')) as { suggested_prompts: { ids: number[]; data_positions: number[] }[] };
const hints = studioHints(studio);
const ids = hints.suggestedIds!;
const dataPositions = studio.suggested_prompts[0]!.data_positions;
const T = ids.length;
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1400 }, pageErrors, (p) => (page = p));

/** The model and its float64 reference forward of the suggested prompt, made once. */
const reference = selectiveCopyReference(ids);

/** A page is needed: the first test loads the model and traces; later ones need that to have worked. */
let traced = false;

const download = downloadBytes;

/** The largest |v| of a row i of a [T, T] matrix over j ≤ i: the scale errors are measured against. */
const rowScale = (alpha: ArrayLike<number>, i: number) => {
  let m = 0;
  for (let j = 0; j <= i; j++) m = Math.max(m, Math.abs(alpha[i * T + j] as number));
  return m;
};

/**
 * Tolerance of the GPU's α against the float64 reference, relative to the row's largest |α|.
 * The engine computes α in fp32 from its own fp32 trace, whose Δ, B and C are held to 1e-4
 * relative of the reference in panels.test.ts (and agree far better in practice); α is a sum over
 * the states of products of C_i, B_j, Δ_j and exp(A·(S_i − S_j)) with S a prefix sum of Δ, so its
 * error relative to the row's scale is of the same order as theirs: 1e-4, as for Δ. (Measured on
 * SwiftShader: at most ~1.2e-5 over the whole matrix.)
 */
const ALPHA_TOL = 1e-4;

describe('analysis panels in Chromium', () => {
  it('loads the selective-copy model and traces its suggested prompt', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    expect(ids).toHaveLength(256);
    await loadSelectiveCopy(p, 120_000);
    await expect.poll(() => p.getByLabel('Input to trace').inputValue()).toBe(ids.join(', '));
    const [, ref] = await Promise.all([traceIds(p, null, 170_000), reference()]);
    expect(ref.ref.delta).toHaveLength(2);
    expect(await p.getByLabel('Layer', { exact: true }).inputValue()).toBe(String(hints.focusLayer));
    traced = true;
  });

  it('hidden attention: the GPU matrix, its cells, rows and exports equal the CPU reference', async (test) => {
    if (!page || !traced) return test.skip(page ? 'the model did not load and trace' : 'browser did not start');
    const p = page;
    const { inspection, table, ref } = await reference();
    const Di = inspection.config.dInner;
    const N = inspection.config.dState;
    const layer = hints.focusLayer!;
    const channel = hints.focusChannels![0]!;
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const aLog = table.get(`backbone.layers.${layer}.mixer.A_log`)!;
    const alphaRef = hiddenAttentionRef(f32(ref.delta[layer]!), f32(ref.B[layer]!), f32(ref.C[layer]!), aLog, T, Di, N, channel);
    const panel = p.getByTestId('hidden-attention-panel');
    await panel.scrollIntoViewIfNeeded();

    // One channel: the focus channel of the focus layer.
    await p.getByLabel('Hidden attention unit').selectOption('one');
    await p.getByLabel('Hidden attention channel').fill(String(channel));
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    const canvas = p.getByTestId('hidden-attention-canvas');
    await canvas.waitFor({ timeout: 120_000 });
    await expect.poll(() => panel.getAttribute('aria-busy')).toBe('false');
    // The canvas is drawn: many distinct colours (the WebGL2 heatmap, read back through a 2-D canvas).
    const distinct = () =>
      p.evaluate(() => {
        const c = document.querySelector<HTMLCanvasElement>('[data-testid="hidden-attention-canvas"]')!;
        const o = document.createElement('canvas');
        o.width = c.width;
        o.height = c.height;
        const g = o.getContext('2d')!;
        g.drawImage(c, 0, 0);
        const d = g.getImageData(0, 0, o.width, o.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
        return colours.size;
      });
    await expect.poll(distinct, { timeout: 30_000 }).toBeGreaterThan(16);

    // The min-max range shown is that of |α| over j ≤ i, as the reference has it.
    const refRange = causalAbsRange(alphaRef, T, false);
    const rangeEl = p.getByTestId('hidden-attention-range');
    const shownRange = { min: Number(await rangeEl.getAttribute('data-min')), max: Number(await rangeEl.getAttribute('data-max')) };
    expect(Math.abs(shownRange.max - refRange.max) / refRange.max, `max |α| ${shownRange.max} vs ${refRange.max}`).toBeLessThanOrEqual(ALPHA_TOL);

    const readout = p.getByTestId('hidden-attention-readout').locator('span[data-row]');
    const hoverCell = async (i: number, j: number) => {
      await p.mouse.move(0, 0);
      // In the tiled workspace the panel may sit low in its column: bring the canvas on screen before aiming at a cell.
      await canvas.scrollIntoViewIfNeeded();
      const box = (await canvas.boundingBox())!;
      const at = matrixCellCentre(T, i, j, box.width, box.height);
      await p.mouse.move(box.x + at.x, box.y + at.y);
      await expect.poll(async () => `${await readout.getAttribute('data-row').catch(() => null)} ${await readout.getAttribute('data-col').catch(() => null)}`).toBe(`${i} ${j}`);
      return { alpha: Number(await readout.getAttribute('data-alpha')), scaled: Number(await readout.getAttribute('data-scaled')), text: (await readout.textContent()) ?? '' };
    };
    let worstCell = 0;
    const checkAlpha = (i: number, j: number, got: number, want: ArrayLike<number> = alphaRef) => {
      const scale = rowScale(want, i);
      const err = Math.abs(got - (want[i * T + j] as number)) / scale;
      worstCell = Math.max(worstCell, err);
      expect(err, `α[${i}, ${j}] = ${got} vs reference ${want[i * T + j]} (row scale ${scale})`).toBeLessThanOrEqual(ALPHA_TOL);
    };
    // The last marker reading the data tokens, a data token reading itself, noise reading noise.
    const lastData = dataPositions[dataPositions.length - 1]!;
    const cells: [number, number][] = [
      [255, dataPositions[0]!],
      [255, lastData],
      [dataPositions[3]!, dataPositions[3]!],
      [200, 150],
      [17, 3],
    ];
    const hovered: number[] = [];
    for (const [i, j] of cells) {
      const got = await hoverCell(i, j);
      checkAlpha(i, j, got.alpha);
      expect(Math.abs(got.scaled - scaledAbs(alphaRef[i * T + j]!, refRange, false))).toBeLessThanOrEqual(ALPHA_TOL);
      expect(got.text).toContain(`α = ${got.alpha.toPrecision(6)}`);
      hovered.push(got.alpha);
    }
    mkdirSync(artifacts, { recursive: true });
    await panel.screenshot({ path: path.join(artifacts, 'panels-hidden-attention.png') });

    // Keyboard: focus the matrix, move the cursor with the arrow keys; Enter asks for that row.
    await canvas.focus();
    await p.mouse.move(0, 0);
    await p.keyboard.press('ArrowUp'); // from the last hovered cell (17, 3)
    await p.keyboard.press('ArrowRight');
    await expect.poll(async () => `${await readout.getAttribute('data-row')} ${await readout.getAttribute('data-col')}`).toBe('16 4');
    checkAlpha(16, 4, Number(await readout.getAttribute('data-alpha')));
    await p.keyboard.press('Enter');
    const rowEl = p.getByTestId('hidden-attention-row');
    await expect.poll(() => rowEl.getAttribute('data-row').catch(() => null), { timeout: 60_000 }).toBe('16');

    // A click on row 255 asks the engine for that row (its own kernel): what the last marker reads.
    const box = (await canvas.boundingBox())!;
    const at = matrixCellCentre(T, 255, 10, box.width, box.height);
    await p.mouse.click(box.x + at.x, box.y + at.y);
    await expect.poll(() => rowEl.getAttribute('data-row').catch(() => null), { timeout: 60_000 }).toBe('255');
    await expect.poll(() => panel.getAttribute('aria-busy')).toBe('false');
    const refTop = topSources(alphaRef.subarray(255 * T, 256 * T), 255, 8);
    const shownTop = await rowEl.locator('[data-testid="hidden-attention-sources"] li').evaluateAll((els) => els.map((e) => ({ token: Number(e.getAttribute('data-token')), alpha: Number(e.getAttribute('data-alpha')) })));
    expect(shownTop).toHaveLength(8);
    // The strongest source is the reference's (when the reference's first two are not a near tie), and every value matches.
    if (Math.abs(refTop[0]!.alpha) - Math.abs(refTop[1]!.alpha) > 2 * ALPHA_TOL * Math.abs(refTop[0]!.alpha)) expect(shownTop[0]!.token).toBe(refTop[0]!.token);
    for (const s of shownTop) checkAlpha(255, s.token, s.alpha);
    expect((await rowEl.locator('polyline').first().getAttribute('points'))!.trim().split(/\s+/)).toHaveLength(256);
    await panel.screenshot({ path: path.join(artifacts, 'panels-hidden-attention-row.png') });

    // The row CSV: the row kernel's α (equal to the reference), scaled as the panel colours it.
    const rowCsv = parseCsv((await download(p, 'Export row CSV')).toString('utf8'));
    expect(rowCsv).toHaveLength(257);
    expect(rowCsv[0]).toEqual(['token', 'id', 'text', 'alpha', 'scaled |alpha|']);
    const rowAlpha = rowCsv.slice(1).map((r) => Number(r[3]));
    for (let j = 0; j < T; j++) checkAlpha(255, j, rowAlpha[j]!);
    for (const s of shownTop) expect(rowAlpha[s.token]).toBe(s.alpha);
    expect(rowCsv[1 + lastData]!.slice(0, 3)).toEqual([String(lastData), String(ids[lastData]), hints.labels![ids[lastData]!]]);

    // The matrix CSV: every causal α equals the reference, zeros above the diagonal, the hovered cells exactly.
    const matrixCsv = parseCsv((await download(p, 'Export attention CSV')).toString('utf8'));
    expect(matrixCsv).toHaveLength(257);
    expect(matrixCsv[0]).toHaveLength(3 + T);
    let worst = 0;
    for (let i = 0; i < T; i++) {
      const row = matrixCsv[1 + i]!.slice(3).map(Number);
      const scale = rowScale(alphaRef, i);
      for (let j = 0; j < T; j++) {
        if (j > i) expect(row[j]).toBe(0);
        else worst = Math.max(worst, Math.abs(row[j]! - alphaRef[i * T + j]!) / scale);
      }
      // The full kernel's row and the row kernel agree.
      if (i === 255) for (let j = 0; j <= i; j++) expect(Math.abs(row[j]! - rowAlpha[j]!)).toBeLessThanOrEqual(1e-5 * scale);
    }
    expect(worst).toBeLessThanOrEqual(ALPHA_TOL);
    cells.forEach(([i, j], k) => expect(Number(matrixCsv[1 + i]![3 + j])).toBe(hovered[k]));
    const png = await download(p, 'Export attention PNG');
    expect([...png.subarray(0, 8)]).toEqual(PNG_MAGIC);

    // The mean over channels, on a log scale.
    await p.getByLabel('Hidden attention unit').selectOption('mean');
    await p.getByLabel('Hidden attention log scale').check();
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-range').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/mean over channels .*\(log\)/);
    const meanRef = hiddenAttentionRef(f32(ref.delta[layer]!), f32(ref.B[layer]!), f32(ref.C[layer]!), aLog, T, Di, N, 'mean');
    // The log scale runs from the smallest positive |α| to the largest: the largest is the
    // reference's; the smallest is a near-cancellation, so only the panel's own colouring is
    // checked against it (the readout's scaled value is what its range gives).
    const logRange = { min: Number(await rangeEl.getAttribute('data-min')), max: Number(await rangeEl.getAttribute('data-max')) };
    const meanMax = causalAbsRange(meanRef, T, true).max;
    expect(Math.abs(logRange.max - meanMax) / meanMax).toBeLessThanOrEqual(ALPHA_TOL);
    expect(logRange.min).toBeGreaterThan(0);
    for (const [i, j] of [
      [255, lastData],
      [120, 41],
      [41, 41],
    ] as const) {
      const got = await hoverCell(i, j);
      checkAlpha(i, j, got.alpha, meanRef);
      expect(got.scaled).toBe(scaledAbs(got.alpha, logRange, true));
    }
    await panel.screenshot({ path: path.join(artifacts, 'panels-hidden-attention-mean-log.png') });

    // A row outside the trace: the engine's message, and the panel keeps working.
    await p.getByLabel('Hidden attention row').fill('999');
    await p.getByRole('button', { name: 'Show row' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-error').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/no token 999.*256/);
    await p.getByLabel('Hidden attention row').fill('41');
    await p.getByRole('button', { name: 'Show row' }).click();
    await expect.poll(() => rowEl.getAttribute('data-row').catch(() => null), { timeout: 60_000 }).toBe('41');
    expect(await p.getByTestId('hidden-attention-error').count()).toBe(0);
    console.info(`hidden attention: largest error relative to the row's scale ${worstCell.toExponential(2)} (cells, rows), ${worst.toExponential(2)} (matrix CSV)`);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });

  it('compare: the per-layer difference of ‖Δ_t‖ equals the reference traces’ difference', async (test) => {
    if (!page || !traced) return test.skip(page ? 'the model did not load and trace' : 'browser did not start');
    const p = page;
    const { inspection, table, ref } = await reference();
    const Di = inspection.config.dInner;
    // B: the same prompt with its first data token changed to another data token.
    const edit = dataPositions[0]!;
    const idsB = [...ids];
    idsB[edit] = ids[edit] === 3 ? 5 : 3;
    const refB = mamba1ForwardRef(inspection.config, (n) => table.get(n), idsB);
    const normsA = ref.delta.map((d) => rowNorms(d, Di));
    const normsB = refB.delta.map((d) => rowNorms(d, Di));
    const panel = p.getByTestId('compare-panel');
    await panel.scrollIntoViewIfNeeded();
    expect(await p.getByLabel('A is the trace on screen').isChecked()).toBe(true);
    await p.getByLabel('Compare prompt B').fill(idsB.join(', '));
    await p.getByRole('button', { name: 'Compare', exact: true }).click();
    await expect.poll(() => p.getByTestId('compare-stats').textContent().catch(() => ''), { timeout: 170_000 }).toMatch(new RegExp(`256 positions compared · ids differ at 1 position: ${edit}$`));

    // The readout at a position, keyboard first: type a position, arrows move it.
    const position = p.getByLabel('Compare position');
    const readAt = async (t: number) => {
      await position.fill(String(t));
      const span = p.getByTestId('compare-readout').locator(`span[data-token="${t}"]`);
      await span.waitFor();
      return span.locator('span[data-layer]').evaluateAll((els) =>
        els.map((e) => ({ layer: Number(e.getAttribute('data-layer')), a: Number(e.getAttribute('data-a')), b: Number(e.getAttribute('data-b')), diff: Number(e.getAttribute('data-diff')) })),
      );
    };
    const close = (got: number, want: number, what: string) => expect(Math.abs(got - want), `${what}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-4 * Math.abs(want) + 1e-6);
    for (const t of [edit - 1, edit, edit + 1, edit + 3, 200, 255]) {
      const layers = await readAt(t);
      expect(layers.map((l) => l.layer)).toEqual([0, 1]);
      for (const l of layers) {
        expect(l.diff).toBe(l.b - l.a);
        close(l.a, normsA[l.layer]![t]!, `‖Δ_${t}‖ A, layer ${l.layer}`);
        close(l.b, normsB[l.layer]![t]!, `‖Δ_${t}‖ B, layer ${l.layer}`);
        // Before the edit nothing can differ (causal); layer 0's Δ sees only the conv window (4 tokens).
        if (t < edit || (l.layer === 0 && t > edit + 3)) expect(l.diff, `B − A at ${t}, layer ${l.layer}`).toBe(0);
      }
    }
    await position.press('ArrowLeft');
    await expect.poll(() => p.getByTestId('compare-readout').locator('span[data-token]').getAttribute('data-token')).toBe('254');
    await position.press('Home');
    await expect.poll(() => p.getByTestId('compare-readout').locator('span[data-token]').getAttribute('data-token')).toBe('0');

    // The summary per layer: mean B − A and where |B − A| is largest, as the reference has them.
    const rows = await p.getByTestId('compare-summary').locator('tbody tr').evaluateAll((els) =>
      els.map((e) => ({ layer: Number(e.getAttribute('data-layer')), meanDiff: Number(e.getAttribute('data-mean-diff')), maxAt: Number(e.getAttribute('data-max-at')) })),
    );
    expect(rows.map((r) => r.layer)).toEqual([0, 1]);
    for (const r of rows) {
      const d = normsB[r.layer]!.map((v, t) => v - normsA[r.layer]![t]!);
      const mean = d.reduce((s, v) => s + v, 0) / T;
      const scale = normsA[r.layer]!.reduce((s, v) => s + v, 0) / T;
      expect(Math.abs(r.meanDiff - mean), `mean B − A, layer ${r.layer}`).toBeLessThanOrEqual(1e-4 * scale);
      const refMaxAt = d.reduce((best, v, t) => (Math.abs(v) > Math.abs(d[best]!) ? t : best), 0);
      expect(r.maxAt, `largest |B − A|, layer ${r.layer}`).toBe(refMaxAt);
    }
    expect(rows[0]!.maxAt).toBeGreaterThanOrEqual(edit);
    expect(rows[0]!.maxAt).toBeLessThanOrEqual(edit + 3);

    // The CSV: every position, both scores equal to the reference, the difference exactly B − A.
    const csv = parseCsv((await download(p, 'Export compare CSV')).toString('utf8'));
    expect(csv).toHaveLength(257);
    expect(csv[0]).toEqual(['token', 'id A', 'text A', 'id B', 'text B', 'score A L0', 'score B L0', 'B-A L0', 'score A L1', 'score B L1', 'B-A L1', 'kind', 'position A', 'position B']);
    for (let t = 0; t < T; t++) {
      const r = csv[1 + t]!;
      expect(Number(r[1])).toBe(ids[t]);
      expect(Number(r[3])).toBe(idsB[t]);
      expect(r[4]).toBe(hints.labels![idsB[t]!]);
      for (const l of [0, 1]) {
        const a = Number(r[5 + 3 * l]);
        const b = Number(r[6 + 3 * l]);
        close(a, normsA[l]![t]!, `CSV ‖Δ_${t}‖ A L${l}`);
        close(b, normsB[l]![t]!, `CSV ‖Δ_${t}‖ B L${l}`);
        expect(Number(r[7 + 3 * l])).toBe(b - a);
      }
    }
    const png = await download(p, 'Export compare PNG');
    expect([...png.subarray(0, 8)]).toEqual(PNG_MAGIC);
    // The figure controls (scale, SVG, PNG) moved the canvas: bring it into the viewport before hovering.
    await p.getByTestId('compare-canvas').evaluate((el) => el.scrollIntoView({ block: 'center' }));
    const cbox = (await p.getByTestId('compare-canvas').boundingBox())!;
    await p.mouse.move(cbox.x + ((edit + 0.5) / T) * cbox.width, cbox.y + 20);
    await expect.poll(() => p.getByTestId('compare-readout').locator('span[data-token]').getAttribute('data-token')).toBe(String(edit));
    await panel.screenshot({ path: path.join(artifacts, 'panels-compare.png') });

    // Issue 15, defect 8: one token inserted early — aligned as a diff, only that column differs
    // (by position, every later one did), and later columns pair each token of A with its own
    // token of B (A's scores there are A's, shifted by nothing).
    const legend = await p.getByTestId('compare-legend').textContent();
    expect(legend).toContain('A: the trace on screen');
    expect(legend).toContain('B: prompt B');
    // An id unlike both its neighbours, so that the one place the insertion can be aligned at is `edit`.
    const extra = [3, 5, 7].find((v) => v !== ids[edit - 1] && v !== ids[edit])!;
    const inserted = [...ids.slice(0, edit), extra, ...ids.slice(edit)];
    await p.getByLabel('Compare prompt B').fill(inserted.join(', '));
    await p.getByRole('button', { name: 'Compare', exact: true }).click();
    await expect
      .poll(() => p.getByTestId('compare-stats').textContent({ timeout: 5000 }).catch(() => ''), { timeout: 60_000 })
      .toMatch(new RegExp(`aligned as a diff: 256 same, 0 replaced, 1 inserted, 0 deleted · 257 positions compared · ids differ at 1 position: ${edit}$`));
    const insertedCell = p.getByTestId('compare-alignment').locator('button[data-kind="inserted"]');
    await expect.poll(() => insertedCell.count()).toBe(1);
    await insertedCell.click();
    await expect.poll(() => p.getByTestId('compare-readout').locator('span[data-token]').getAttribute('data-kind')).toBe('inserted');
    expect(await p.getByTestId('compare-readout').locator('span[data-token]').getAttribute('data-token')).toBe(String(edit));
    for (const column of [edit + 1, 200]) {
      const layers = await readAt(column);
      // Column c > edit holds A's token c − 1 (and B's token c).
      for (const l of layers) close(l.a, normsA[l.layer]![column - 1]!, `aligned ‖Δ‖ of A's token ${column - 1}, layer ${l.layer}`);
    }

    // The engine's newest trace is now B: hidden attention names the trace on screen by its id,
    // so its row is still A's (equal to the reference of A, not of B, which differ there).
    const layer = hints.focusLayer!;
    const channel = hints.focusChannels![0]!;
    const aLog = table.get(`backbone.layers.${layer}.mixer.A_log`)!;
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const N = inspection.config.dState;
    const alphaA = hiddenAttentionRef(f32(ref.delta[layer]!), f32(ref.B[layer]!), f32(ref.C[layer]!), aLog, T, Di, N, channel);
    const alphaB = hiddenAttentionRef(f32(refB.delta[layer]!), f32(refB.B[layer]!), f32(refB.C[layer]!), aLog, T, Di, N, channel);
    await p.getByLabel('Hidden attention unit').selectOption('one');
    await p.getByLabel('Hidden attention row').fill(String(edit));
    await p.getByRole('button', { name: 'Show row' }).click();
    const rowEl = p.getByTestId('hidden-attention-row');
    await expect.poll(async () => `${await rowEl.getAttribute('data-row').catch(() => null)} ${await rowEl.getAttribute('data-unit').catch(() => null)}`, { timeout: 170_000 }).toBe(`${edit} ${channel}`);
    const self = Number(await rowEl.locator(`li[data-token="${edit}"]`).getAttribute('data-alpha'));
    const scale = rowScale(alphaA, edit);
    expect(Math.abs(self - alphaA[edit * T + edit]!) / scale).toBeLessThanOrEqual(ALPHA_TOL);
    expect(Math.abs(alphaB[edit * T + edit]! - alphaA[edit * T + edit]!) / scale, 'A and B differ at the edit').toBeGreaterThan(10 * ALPHA_TOL);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });

  it('knockout: filtering a data token moves the next-token distribution far more than a noise token, as the reference does', async (test) => {
    if (!page || !traced) return test.skip(page ? 'the model did not load and trace' : 'browser did not start');
    const p = page;
    const { inspection, table } = await reference();
    const V = inspection.config.vocabSize;
    // The prompt up to the first marker: its next token is the first data token (ids[41]). (At the
    // end of the whole prompt the answer, the 16th data token, is also the 15th, so one knockout
    // cannot move it.)
    const first = dataPositions[0]!;
    const prefix = ids.slice(0, 241);
    expect(prefix[240]).toBe(17);
    await fillTraceBox(p, prefix.join(', '));
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, '241 tokens · 2 layers · d_inner 256', pageErrors, 170_000);
    const refOf = (knockout?: { token: number; layers: number[] }) => {
      const logits = mamba1ForwardRef(inspection.config, (n) => table.get(n), prefix, 'backbone.', knockout).logits;
      return softmax(logits.subarray(240 * V, 241 * V));
    };
    const baselineRef = refOf();
    expect(baselineRef.indexOf(Math.max(...baselineRef))).toBe(ids[first]);

    const panel = p.getByTestId('knockout-panel');
    await panel.scrollIntoViewIfNeeded();
    await p.getByLabel('Knockout top k').fill(String(V));
    const summary = p.getByTestId('knockout-summary');
    const knock = async (token: number, layer: number) => {
      await p.getByLabel('Layer', { exact: true }).selectOption(String(layer));
      await p.getByLabel('Knockout layers').selectOption('selected');
      await p.getByLabel('Knockout token').fill(String(token));
      await p.getByRole('button', { name: 'Filter this token' }).click();
      await expect.poll(async () => `${await summary.getAttribute('data-token').catch(() => null)} ${await summary.getAttribute('data-layers').catch(() => null)}`, { timeout: 170_000 }).toBe(`${token} ${layer}`);
      await expect.poll(() => panel.getAttribute('aria-busy')).toBe('false');
      const rows = await p.getByTestId('knockout-table').locator('tbody tr').evaluateAll((els) =>
        els.map((e) => ({ id: Number(e.getAttribute('data-id')), before: Number(e.getAttribute('data-before')), after: Number(e.getAttribute('data-after')) })),
      );
      expect(rows).toHaveLength(V);
      const before = new Float64Array(V);
      const after = new Float64Array(V);
      for (const r of rows) {
        before[r.id] = r.before;
        after[r.id] = r.after;
      }
      return { before, after, kl: Number(await summary.getAttribute('data-kl')), tv: Number(await summary.getAttribute('data-tv')), topAfter: Number(await summary.getAttribute('data-top-after')) };
    };
    // Probabilities from the GPU's fp32 logits against the float64 reference's: the logits agree to
    // ~1e-4 of their size (a few units), so each probability to well under 1e-3.
    const PROB_TOL = 1e-3;
    const checkDistribution = (got: Float64Array, want: Float64Array, what: string) => {
      for (let v = 0; v < V; v++) expect(Math.abs(got[v]! - want[v]!), `${what} p(${v}): ${got[v]} vs ${want[v]}`).toBeLessThanOrEqual(PROB_TOL);
    };
    const noise = 200;
    expect(ids[noise]).toBe(0);
    const results: Record<string, { kl: number; tv: number; after: Float64Array }> = {};
    // Layer 0 (the focus layer): the data token itself, and a noise token. Layer 1: two tokens after
    // the data token (the conv carries it there), where layer 1 writes it into its state.
    const runs = [
      ['data L0', first, 0],
      ['noise L0', noise, 0],
      ['write L1', first + 2, 1],
      ['noise L1', noise, 1],
    ] as const;
    for (const [name, token, layer] of runs) {
      const got = await knock(token, layer);
      const knockedRef = refOf({ token, layers: [layer] });
      checkDistribution(got.before, baselineRef, `baseline (${name})`);
      checkDistribution(got.after, knockedRef, `${name}: token ${token} knocked out`);
      // The panel's KL and TV are the engine's over the whole vocabulary (k = V here): equal to what its probabilities give.
      expect(Math.abs(got.kl - klDivergence(got.before, got.after)), `KL ${got.kl}`).toBeLessThanOrEqual(1e-6 * got.kl + 1e-12);
      expect(Math.abs(got.tv - totalVariation(got.before, got.after))).toBeLessThanOrEqual(1e-12);
      expect(got.topAfter).toBe(got.after[ids[first]!]);
      const refTv = totalVariation(baselineRef, knockedRef);
      expect(Math.abs(got.tv - refTv), `${name}: TV ${got.tv} vs reference ${refTv}`).toBeLessThanOrEqual(PROB_TOL);
      results[name] = { kl: got.kl, tv: got.tv, after: got.after };
      if (name === 'write L1') await panel.screenshot({ path: path.join(artifacts, 'panels-knockout.png') });
    }
    console.info(`knockout (KL nats, TV): ${Object.entries(results).map(([n, r]) => `${n} ${r.kl.toExponential(3)} ${r.tv.toExponential(3)}`).join('; ')}`);
    // Filtering the data token moves the distribution far more than filtering noise (reference: ~250× in TV, ~2·10⁴× in KL).
    expect(results['data L0']!.tv).toBeGreaterThan(50 * results['noise L0']!.tv);
    expect(results['data L0']!.kl).toBeGreaterThan(1000 * results['noise L0']!.kl);
    // In layer 1, filtering where it writes the data token changes the answer; noise changes nothing.
    const flipped = results['write L1']!.after;
    expect(flipped.indexOf(Math.max(...flipped))).not.toBe(ids[first]);
    expect(results['write L1']!.tv).toBeGreaterThan(0.9);
    expect(results['noise L1']!.tv).toBeLessThan(1e-4);

    // The CSV holds the last run's two distributions, rank by rank.
    const csv = parseCsv((await download(p, 'Export knockout CSV')).toString('utf8'));
    expect(csv[0]).toEqual(['rank', 'baseline id', 'baseline text', 'baseline p', 'knocked id', 'knocked text', 'knocked p']);
    expect(csv).toHaveLength(1 + V);
    const table2 = await p.getByTestId('knockout-table').locator('tbody tr').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-id')), Number(e.getAttribute('data-before')), Number(e.getAttribute('data-after'))] as const));
    const byId = new Map(table2.map(([id, b, a]) => [id, { b, a }]));
    for (const r of csv.slice(1)) {
      expect(Number(r[3])).toBe(byId.get(Number(r[1]))!.b);
      expect(Number(r[6])).toBe(byId.get(Number(r[4]))!.a);
    }
    const png = await download(p, 'Export knockout PNG');
    expect([...png.subarray(0, 8)]).toEqual(PNG_MAGIC);

    // A token outside the prompt: the engine's message; the panel stays usable.
    await p.getByLabel('Knockout token').fill('300');
    await p.getByRole('button', { name: 'Filter this token' }).click();
    await expect.poll(() => p.getByTestId('knockout-error').textContent().catch(() => ''), { timeout: 60_000 }).toMatch(/no token 300.*241/);
    expect(await p.getByRole('button', { name: 'Filter this token' }).isEnabled()).toBe(true);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });
  it('the three panels with the byte-level Shakespeare model: text prompts, four layers', async (test) => {
    if (!page || !traced) return test.skip(page ? 'the first model did not load and trace' : 'browser did not start');
    const p = page;
    const dir = path.join(root, 'resources/models/shakespeare-byte');
    const files = await folderModelFiles(dir);
    const inspection = await inspectModel(files);
    const table = await readAllTensorsF32(files, inspection);
    await files.close();
    const { dInner: Di, dState: N, vocabSize: V } = inspection.config;
    const text = 'KING RICHARD III:\nNow is the winter of our discontent';
    const bytes = [...new TextEncoder().encode(text)];
    const edited = text.replace('winter', 'summer');
    const bytesB = [...new TextEncoder().encode(edited)];
    const editAt = text.indexOf('winter');
    const TT = bytes.length;

    await p.getByRole('option', { name: /Shakespeare bytes/ }).click();
    await p.getByRole('button', { name: 'Load onto the GPU' }).click();
    await expect.poll(() => p.getByTestId('load-done').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/On the GPU/);
    await fillTraceBox(p, text);
    await p.getByRole('button', { name: 'Trace', exact: true }).click();
    await expectTraceStats(p, `${TT} tokens · 4 layers · d_inner ${Di}`, pageErrors, 170_000);
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), bytes);
    const refB = mamba1ForwardRef(inspection.config, (n) => table.get(n), bytesB);

    // Hidden attention of layer 2, mean over channels: a cell equals the reference.
    await p.getByLabel('Layer', { exact: true }).selectOption('2');
    const ha = p.getByTestId('hidden-attention-panel');
    await ha.scrollIntoViewIfNeeded();
    expect(await p.getByLabel('Hidden attention unit').inputValue()).toBe('mean'); // a fresh panel for this model
    await p.getByRole('button', { name: 'Compute hidden attention' }).click();
    await expect.poll(() => p.getByTestId('hidden-attention-range').textContent().catch(() => ''), { timeout: 120_000 }).toMatch(/^layer 2, mean over channels/);
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const alphaRef = hiddenAttentionRef(f32(ref.delta[2]!), f32(ref.B[2]!), f32(ref.C[2]!), table.get('backbone.layers.2.mixer.A_log')!, TT, Di, N, 'mean');
    const canvas = p.getByTestId('hidden-attention-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const i = TT - 1;
    const j = editAt;
    const at = { x: ((j + 0.5) / TT) * box.width, y: ((i + 0.5) / TT) * box.height };
    await p.mouse.move(0, 0);
    await p.mouse.click(box.x + at.x, box.y + at.y);
    const readout = p.getByTestId('hidden-attention-readout').locator('span[data-row]');
    await expect.poll(async () => `${await readout.getAttribute('data-row').catch(() => null)} ${await readout.getAttribute('data-col').catch(() => null)}`).toBe(`${i} ${j}`);
    let scale = 0;
    for (let k = 0; k <= i; k++) scale = Math.max(scale, Math.abs(alphaRef[i * TT + k]!));
    expect(Math.abs(Number(await readout.getAttribute('data-alpha')) - alphaRef[i * TT + j]!) / scale).toBeLessThanOrEqual(ALPHA_TOL);
    await expect.poll(() => p.getByTestId('hidden-attention-row').getAttribute('data-row').catch(() => null), { timeout: 60_000 }).toBe(String(i));
    expect(await readout.textContent()).toContain('reads token');
    await ha.screenshot({ path: path.join(artifacts, 'panels-hidden-attention-shakespeare.png') });

    // Compare with one word changed: the text B starts from is the prompt on screen.
    const cp = p.getByTestId('compare-panel');
    await cp.scrollIntoViewIfNeeded();
    expect(await p.getByLabel('Compare prompt B').inputValue()).toBe(text);
    await p.getByLabel('Compare prompt B').fill(edited);
    await p.getByRole('button', { name: 'Compare', exact: true }).click();
    await expect.poll(() => p.getByTestId('compare-stats').textContent().catch(() => ''), { timeout: 170_000 }).toMatch(new RegExp(`${TT} positions compared · ids differ at 4 positions: ${editAt}, ${editAt + 1}, ${editAt + 2}, ${editAt + 3}`));
    const csv = parseCsv((await download(p, 'Export compare CSV')).toString('utf8'));
    expect(csv).toHaveLength(TT + 1);
    for (let l = 0; l < 4; l++) {
      const normsA = rowNorms(ref.delta[l]!, Di);
      const normsB = rowNorms(refB.delta[l]!, Di);
      for (let t = 0; t < TT; t++) {
        const r = csv[1 + t]!;
        const a = Number(r[5 + 3 * l]);
        const b = Number(r[6 + 3 * l]);
        expect(Math.abs(a - normsA[t]!)).toBeLessThanOrEqual(1e-4 * normsA[t]! + 1e-6);
        expect(Math.abs(b - normsB[t]!)).toBeLessThanOrEqual(1e-4 * normsB[t]! + 1e-6);
        expect(Number(r[7 + 3 * l])).toBe(b - a);
        if (t < editAt) expect(b - a).toBe(0);
      }
    }
    await cp.screenshot({ path: path.join(artifacts, 'panels-compare-shakespeare.png') });

    // Knockout of the first byte of "winter" in every layer: the panel's numbers are the reference's.
    const kp = p.getByTestId('knockout-panel');
    await kp.scrollIntoViewIfNeeded();
    await p.getByLabel('Knockout layers').selectOption('all');
    await p.getByLabel('Knockout top k').fill('10');
    await p.getByLabel('Knockout token').fill(String(editAt));
    await p.getByRole('button', { name: 'Filter this token' }).click();
    const summary = p.getByTestId('knockout-summary');
    await expect.poll(() => summary.getAttribute('data-layers').catch(() => null), { timeout: 170_000 }).toBe('0,1,2,3');
    const rows = await p.getByTestId('knockout-table').locator('tbody tr').evaluateAll((els) =>
      els.map((e) => ({ id: Number(e.getAttribute('data-id')), before: Number(e.getAttribute('data-before')), after: Number(e.getAttribute('data-after')) })),
    );
    const baselineRef = softmax(ref.logits.subarray((TT - 1) * V, TT * V));
    const knockedRef = softmax(mamba1ForwardRef(inspection.config, (n) => table.get(n), bytes, 'backbone.', { token: editAt, layers: null }).logits.subarray((TT - 1) * V, TT * V));
    for (const r of rows) {
      if (Number.isFinite(r.before)) expect(Math.abs(r.before - baselineRef[r.id]!), `baseline p(${r.id})`).toBeLessThanOrEqual(1e-3);
      if (Number.isFinite(r.after)) expect(Math.abs(r.after - knockedRef[r.id]!), `knocked p(${r.id})`).toBeLessThanOrEqual(1e-3);
    }
    // Top 10 of the panel = top 10 of the reference (where the reference's ranks are not a near tie).
    const refTop = Array.from(baselineRef.keys()).sort((x, y) => baselineRef[y]! - baselineRef[x]!);
    expect(rows.filter((r) => Number.isFinite(r.before))).toHaveLength(10);
    expect(rows[0]!.id).toBe(refTop[0]);
    const kl = Number(await summary.getAttribute('data-kl'));
    const refKl = klDivergence(baselineRef, knockedRef);
    expect(Math.abs(kl - refKl), `KL ${kl} vs reference ${refKl}`).toBeLessThanOrEqual(1e-3 * refKl + 1e-4);
    await kp.screenshot({ path: path.join(artifacts, 'panels-knockout-shakespeare.png') });
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  });
});
