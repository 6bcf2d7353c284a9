/**
 * The causal tools (issue 21) in Chromium on the bundled selective-copy model (2 layers, d_inner
 * 256), short prompts (the first 96 ids of its first suggested prompt: data tokens at 41, 51, 64
 * in noise; and the task packed into 64 tokens):
 * - receptive field: the reach per channel the panel exports equals the one computed in float64
 *   from the CPU reference's Δ (app/arch/mamba1/reference.ts); at the default ε = 0.1 the focus
 *   channels of the focus layer (studio.json) reach further back on average than the other
 *   channels, and the focus layer has more global channels than layer 1 (measured with the
 *   reference on all three suggested prompts, 48–256 tokens: 198–217 against 101–153 global); the
 *   chart takes the keyboard.
 * - logit lens: on the packed prompt, each cell's top token, the final prediction's rank and
 *   probability equal norm_f + LM head applied in float64 to the reference's residual streams; at
 *   the 16 marker positions the last layer predicts the data token due there at least 12 times
 *   (measured with the reference: 12 of 16), layer 0's residual stream never does (ranks 2–17): the
 *   copy is read out by layer 1.
 * - attribution: on the packed prompt cut after its first marker (49 tokens: the answer due is the
 *   first data token), filtering each of tokens 0–11 in all layers changes log p(answer) as the
 *   reference's knockout forward does (checked at 5 tokens), and only tokens at the first data token move it (the data token itself
 *   and the noise token two after it; the reference: −1.6 and −19.5 nats, every other token
 *   < 0.05); the hidden attention comparison is shown as bars, its ρ that of the exported
 *   columns; the token strip shows the same attribution as a bar per token (readout by keyboard,
 *   no bar after the attributed range, its CSV the panel's).
 * - patching: that 49-token prompt clean, corrupted by another first data token (E instead of L):
 *   the cells (states after tokens 0–3) equal a float64 step-by-step reference with swapped
 *   states; layer 1's state restores the clean answer (≥ 0.9 of the logit difference), layer 0's
 *   does not (< 0.1: the copied token reaches the readout through layer 1's state, not layer 0's —
 *   the issue expected the focus layer 0; measured with the reference: 1.00 and −0.015 … 0.002);
 *   the residual stream after block 0 at the data token restores it (1.005), after block 1 not
 *   (0.000: no later layer reads position 0 of the last block's stream) — the token is written by
 *   layer 0 into the stream, stored in layer 1's state and read out at the marker. The residual
 *   run takes its prompts from the Compare panel's pair in one click (A typed: a trace not on
 *   screen, as the clean run; B the corrupted one).
 * - steering: on that prompt, layer 1's state after token 47 pushed by state(B) − state(A), A and
 *   B its first 48 tokens with the first data token L or E: the answer turns from L to E, and the
 *   continuations equal the float64 step reference's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { linear, rmsnorm } from '../../app/model/reference';
import { mamba1ForwardRef } from '../../app/arch/mamba1/reference';
import { receptiveField, reachByGroup } from '../../app/analysis/receptive-field';
import { parseCsv } from '../../renderer/src/panels/csv';
import { spearman } from '../../renderer/src/panels/attribution-view';
import { softmax } from '../../app/analysis/distributions';
import { studioHints } from '../../renderer/src/panels/selection';
import { findChromium } from '../support/browser';
import { useWebApp } from '../support/web-app';
import { downloadBytes, loadSelectiveCopy, selectiveCopyDir, selectiveCopyReference, traceIds } from '../support/selective-copy-app';
import { copyStates, feedSteps, refStep, type MixerHook, type RefLayerState } from '../support/step-ref';
import { expectTraceStats } from '../support/trace-wait';

const modelDir = selectiveCopyDir;
const chromiumFound = findChromium();
const hints = studioHints(JSON.parse(readFileSync(path.join(modelDir, 'studio.json'), 'utf8')));
const T = 96;
const ids = hints.suggestedIds!.slice(0, T);
const studio = JSON.parse(readFileSync(path.join(modelDir, 'studio.json'), 'utf8')) as { suggested_prompts: { expected: number[] }[] };
/** The copy task packed tight: the first suggested prompt's 16 data tokens two noise tokens apart, then the 16 markers (64 tokens). */
const expected = studio.suggested_prompts[0]!.expected;
const packed = [...expected.flatMap((d) => [d, 0, 0]), ...new Array<number>(16).fill(17)];
const focus = hints.focusChannels!;

let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 1200 }, pageErrors, (p) => (page = p));

const reference = selectiveCopyReference(ids);
const download = downloadBytes;

let traced = false;

/** The step reference's config and weights, and the packed prompt cut after its first marker (the trace on screen from the attribution test on). */
async function cutCase() {
  const { inspection, table } = await reference();
  return { c: inspection.config, w: (n: string) => table.get(n), clean: packed.slice(0, 49) };
}

describe('causal tools in Chromium', () => {
  it('loads the selective-copy model and traces a 96-token prompt', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await loadSelectiveCopy(p);
    await Promise.all([traceIds(p, ids), reference()]);
    traced = true;
  });

  it('receptive field: the exported reach per channel is the float64 reference’s; focus channels reach further; layer 0 has more global channels', async (test) => {
    if (!page || !traced) return test.skip('needs the traced page');
    const p = page;
    const { inspection, table, ref } = await reference();
    const { dInner: Di, dState: N } = inspection.config;
    const panel = p.getByTestId('receptive-field-panel');
    const summary = p.getByTestId('receptive-field-summary');
    const eps = 0.1;
    const budget = Math.log(1 / eps);
    const refs = [0, 1].map((l) => receptiveField(ref.delta[l]!, T, Di, Float64Array.from(table.get(`backbone.layers.${l}.mixer.A_log`)!, (v) => -Math.exp(v)), N, eps));
    for (const layer of [0, 1]) {
      await panel.getByLabel('Receptive field layer').selectOption(String(layer));
      await expect.poll(() => summary.getAttribute('data-layer')).toBe(String(layer));
      expect(await summary.getAttribute('data-threshold')).toBe(String(eps));
      const rows = parseCsv((await download(p, 'Export receptive field CSV')).toString()).slice(1).filter((r) => r.length > 1);
      expect(rows).toHaveLength(Di);
      const want = refs[layer]!;
      let compared = 0;
      for (const [, channel, reach, kind] of rows) {
        const d = Number(channel);
        // Skip a channel whose partial sums come within fp32 rounding of the threshold (none expected).
        let sum = 0;
        let near = false;
        for (let t = T - 1; t >= 1; t--) {
          sum += ref.delta[layer]![t * Di + d]!;
          if (Math.abs(want.decayRate[d]! * sum - budget) <= 1e-4 * budget) near = true;
        }
        if (near) continue;
        compared++;
        expect(Number(reach), `layer ${layer} channel ${d} reach`).toBe(want.reach[d]);
        expect(kind).toBe(want.global[d] ? 'global' : 'local');
      }
      expect(compared).toBeGreaterThan(0.95 * Di);
      expect(Number(await summary.getAttribute('data-global'))).toBe(rows.filter((r) => r[3] === 'global').length);
    }
    // The claims, on the panel's own numbers: layer 0 (the focus layer) has more global channels than layer 1 …
    const globals = await p.getByTestId('receptive-field-layers').locator('tr[data-layer]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-global'))));
    expect(globals).toEqual([refs[0]!.globalCount, refs[1]!.globalCount]);
    expect(globals[0]!).toBeGreaterThan(globals[1]!);
    // … and its focus channels reach further back on average than its other channels.
    await panel.getByLabel('Receptive field layer').selectOption('0');
    await expect.poll(() => summary.getAttribute('data-layer')).toBe('0');
    const focusReach = Number(await summary.getAttribute('data-focus-reach'));
    const otherReach = Number(await summary.getAttribute('data-other-reach'));
    const wantGroups = reachByGroup(refs[0]!, focus);
    expect(focusReach).toBeCloseTo(wantGroups.inside, 9);
    expect(otherReach).toBeCloseTo(wantGroups.outside, 9);
    expect(focusReach).toBeGreaterThan(otherReach);
    expect(await panel.locator('[data-focus-unit]').count()).toBe(focus.length);
    // Keyboard: Home reads out the longest-reaching channel, End the shortest.
    const chart = p.getByTestId('receptive-field-chart');
    await chart.focus();
    await p.keyboard.press('Home');
    await expect.poll(() => p.getByTestId('receptive-field-readout').getAttribute('data-unit')).toBe(String(refs[0]!.order[0]));
    await p.keyboard.press('End');
    await expect.poll(() => p.getByTestId('receptive-field-readout').getAttribute('data-unit')).toBe(String(refs[0]!.order[Di - 1]));
    expect(await p.getByTestId('receptive-field-readout').textContent()).toMatch(/reach \d+ tokens \((global|local)\)/);
    expect(pageErrors).toEqual([]);
  });

  it('logit lens: the grid is the float64 reference’s lens; layer 1 reads the copied tokens out, layer 0 does not', async (test) => {
    if (!page || !traced) return test.skip('needs the traced page');
    const p = page;
    const { inspection, table } = await reference();
    const { dModel: D, vocabSize: V, normEps } = inspection.config;
    await traceIds(p, packed);
    const panel = p.getByTestId('logit-lens-panel');
    // The default range: the last 16 positions, the markers.
    expect(await panel.getByLabel('Logit lens from').inputValue()).toBe('48');
    await panel.getByRole('button', { name: 'Run the logit lens' }).click();
    const grid = p.getByTestId('logit-lens-grid');
    await expect.poll(() => grid.getAttribute('data-from'), { timeout: 30_000 }).toBe('48');
    const cells = await grid.locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => ({ top: Number(td.dataset.top), rank: Number(td.dataset.rank), prob: Number(td.dataset.prob) }))));
    expect(cells).toHaveLength(2);
    const ref = mamba1ForwardRef(inspection.config, (n) => table.get(n), packed);
    const lens = [0, 1].map((l) => linear(rmsnorm(ref.hidden[l]!, 64, D, table.get('backbone.norm_f.weight')!, normEps), 64, D, table.get('backbone.embeddings.weight')!, V));
    const argmax = (row: ArrayLike<number>) => Array.from(row).reduce((best, v, i, a) => (v > a[best]! ? i : best), 0);
    let finalRight = 0;
    let layer0Right = 0;
    for (let j = 0; j < 16; j++) {
      const pos = 48 + j;
      const rows = [0, 1].map((l) => lens[l]!.subarray(pos * V, (pos + 1) * V));
      const final = argmax(rows[1]!);
      for (const l of [0, 1]) {
        const row = rows[l]!;
        const max = Math.max(...row);
        const sum = Array.from(row).reduce((s, v) => s + Math.exp(v - max), 0);
        const cell = cells[l]![j]!;
        expect(cell.top, `layer ${l} position ${pos} top token`).toBe(argmax(row));
        expect(cell.rank, `layer ${l} position ${pos} rank`).toBe(Array.from(row).filter((v) => v > row[final]!).length);
        expect(cell.prob).toBeCloseTo(Math.exp(row[final]! - max) / sum, 4);
      }
      if (cells[1]![j]!.top === expected[j]) finalRight++;
      if (cells[0]![j]!.top === expected[j]) layer0Right++;
    }
    expect(finalRight).toBeGreaterThanOrEqual(12);
    expect(layer0Right).toBe(0);
    // Keyboard: the grid takes the arrows (the first press puts the cursor on the first cell); the readout names the cell.
    await grid.focus();
    await p.keyboard.press('ArrowRight');
    await p.keyboard.press('ArrowRight');
    await p.keyboard.press('ArrowDown');
    await expect.poll(() => p.getByTestId('logit-lens-readout').textContent()).toMatch(/^layer 1, after position 49 /);
    const csv = parseCsv((await download(p, 'Export logit lens CSV')).toString()).filter((r) => r.length > 1);
    expect(csv[0]!.slice(0, 6)).toEqual(['layer', 'position', 'target_id', 'target_text', 'target_rank', 'target_prob']);
    expect(csv).toHaveLength(1 + 2 * 16);
    expect(pageErrors).toEqual([]);
  });

  it('attribution: each token filtered in turn, as the reference’s knockout; only tokens at the first data token matter', async (test) => {
    if (!page || !traced) return test.skip('needs the traced page');
    const p = page;
    const { inspection, table } = await reference();
    const V = inspection.config.vocabSize;
    const cut = packed.slice(0, 49);
    await traceIds(p, cut);
    const panel = p.getByTestId('attribution-panel');
    // Tokens 0–11 (four data tokens and their noise; all 49 take ~4× longer on SwiftShader).
    await panel.getByLabel('Attribution to').fill('12');
    await panel.getByRole('button', { name: 'Attribute the prediction' }).click();
    const summary = p.getByTestId('attribution-summary');
    await expect.poll(() => summary.getAttribute('data-target').catch(() => null), { timeout: 40_000 }).not.toBeNull();
    const lastRow = (out: { logits: Float64Array }) => softmax(out.logits.subarray(48 * V, 49 * V));
    const base = lastRow(mamba1ForwardRef(inspection.config, (n) => table.get(n), cut));
    const target = Number(await summary.getAttribute('data-target'));
    expect(target).toBe(expected[0]); // the model answers the first data token
    expect(Number(await summary.getAttribute('data-baseline'))).toBeCloseTo(base[target]!, 4);
    const csv = parseCsv((await download(p, 'Export attribution CSV')).toString()).filter((r) => r.length > 1);
    expect(csv[0]).toEqual(['token', 'text', 'log_prob_change_nats', 'target_prob_after', 'kl_nats', 'hidden_attention_last_row']);
    const change = csv.slice(1).map((r) => Number(r[2]));
    expect(change).toHaveLength(12);
    // Against the reference's knockout forward at the tokens around the first data token and the last one.
    for (const j of [0, 1, 2, 3, 11]) {
      const want = Math.log(lastRow(mamba1ForwardRef(inspection.config, (n) => table.get(n), cut, 'backbone.', { token: j, layers: null }))[target]!) - Math.log(base[target]!);
      expect(change[j]!, `token ${j}`).toBeCloseTo(want, 3);
    }
    // Only the first data token and the noise token two after it matter (the reference: −1.6 and
    // −19.5 nats); filtering any other token moves log p(answer) by less than 0.05 nats (the
    // reference: every one of the 49).
    const matter = change.map((c, j) => (Math.abs(c) >= 0.05 ? j : -1)).filter((j) => j >= 0);
    expect(matter).toEqual([0, 2]);
    expect(Number.isFinite(Number(await summary.getAttribute('data-spearman')))).toBe(true);
    // Keyboard: End reads out the last filtered token.
    await p.getByTestId('attribution-chart').focus();
    await p.keyboard.press('End');
    await expect.poll(() => p.getByTestId('attribution-readout').getAttribute('data-token')).toBe('11');
    // Hidden attention of the last token beside it, as bars over the same tokens; ρ is the exported columns' rank correlation.
    const alpha = csv.slice(1).map((r) => Number(r[5]));
    expect(await p.getByTestId('attribution-attention').locator('path[data-series="attention"]').last().getAttribute('d')).toMatch(/^M/);
    expect(Number(await summary.getAttribute('data-spearman'))).toBeCloseTo(spearman(change.map((v) => -v), alpha), 6);
    // The token strip shows the same attribution: a bar per attributed token (none after token 11), its readout follows the hovered token, and its CSV is the panel's.
    const strip = p.getByTestId('strip-attribution');
    expect(await strip.getAttribute('data-target')).toBe(String(target));
    await p.getByTestId('strip-attribution-chart').focus();
    await p.keyboard.press('Home');
    await p.keyboard.press('ArrowRight');
    await p.keyboard.press('ArrowRight');
    const readout = p.getByTestId('strip-attribution-readout');
    await expect.poll(() => readout.getAttribute('data-token')).toBe('2');
    expect(Number(await readout.getAttribute('data-value'))).toBeCloseTo(change[2]!, 5);
    await p.keyboard.press('End');
    await expect.poll(() => readout.getAttribute('data-token')).toBe('48');
    expect(await readout.getAttribute('data-value')).toBe('NaN');
    expect(await p.getByTestId('strip-attribution-chart-y-axis').getAttribute('data-label')).toBe('Δ log p (nats)');
    const stripCsv = parseCsv((await download(p, 'Export token attribution CSV')).toString()).filter((r) => r.length > 1);
    expect(stripCsv.map((r) => r.slice(0, 5))).toEqual(csv.map((r) => r.slice(0, 5)));
    expect(pageErrors).toEqual([]);
  });

  it('patching: layer 1’s state after the first data token restores the answer, layer 0’s does not; the residual stream after block 0 there does; as the float64 reference', async (test) => {
    if (!page || !traced) return test.skip('needs the traced page');
    const p = page;
    const { c, w, clean } = await cutCase();
    const corrupt = [5, ...clean.slice(1)];
    // The trace on screen is the attribution test's: this clean prompt.
    await expectTraceStats(p, '49 tokens · 2 layers · d_inner 256', pageErrors);
    const panel = p.getByTestId('patching-panel');
    await panel.getByLabel('Corrupted prompt').fill(corrupt.join(', '));
    await panel.getByLabel('Patching to').fill('4');
    await panel.getByRole('button', { name: 'Patch the state' }).click();
    const summary = p.getByTestId('patching-summary');
    await expect.poll(() => summary.getAttribute('data-answer').catch(() => null), { timeout: 40_000 }).toBe(String(expected[0]));
    expect(await summary.getAttribute('data-foil')).toBe('5');
    const cleanRun = feedSteps(c, w, clean, { keep: true });
    const corruptRun = feedSteps(c, w, corrupt, { keep: true });
    const ld = (logits: Float64Array) => logits[expected[0]!]! - logits[5]!;
    expect(Number(await summary.getAttribute('data-clean'))).toBeCloseTo(ld(cleanRun.logits), 2);
    expect(Number(await summary.getAttribute('data-corrupt'))).toBeCloseTo(ld(corruptRun.logits), 2);
    const rows = parseCsv((await download(p, 'Export patching CSV')).toString()).slice(1).filter((r) => r.length > 1);
    expect(rows).toHaveLength(2 * 4);
    for (const [layer, token, , patchedDiff, restored] of rows) {
      const [l, t] = [Number(layer), Number(token)];
      const s = copyStates(corruptRun.after[t]!);
      s[l] = copyStates(cleanRun.after[t]!)[l]!;
      let logits: Float64Array = new Float64Array(0);
      for (const id of corrupt.slice(t + 1)) logits = refStep(c, w, id, s);
      expect(Math.abs(Number(patchedDiff) - ld(logits)), `layer ${l} token ${t}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(ld(logits))));
      if (l === 1) expect(Number(restored)).toBeGreaterThanOrEqual(0.9);
      else expect(Math.abs(Number(restored))).toBeLessThan(0.1);
    }
    // Keyboard: the first arrow puts the cursor on layer 0, token 0; ↓ moves to layer 1.
    await p.getByTestId('patching-canvas').focus();
    await p.keyboard.press('ArrowRight');
    await p.keyboard.press('ArrowDown');
    await expect.poll(() => p.getByTestId('patching-readout').getAttribute('data-layer')).toBe('1');
    expect(await p.getByTestId('patching-readout').getAttribute('data-token')).toBe('0');

    // The residual stream at tokens 0–1, against the step reference with the stream replaced.
    const act: { before: Float64Array; out: Float64Array }[][] = [];
    const runHooked = (ids: number[], hookAt: (t: number) => MixerHook | undefined) => feedSteps(c, w, ids, { hookAt }).logits;
    runHooked(clean, (t) => (l, before, out) => {
      (act[t] ??= [])[l] = { before: before.slice(), out: out.slice() };
    });
    // The residual site with the Compare panel's pair: A typed (the clean prompt, traced again: not the trace on screen), B the corrupted one.
    const compare = p.getByTestId('compare-panel');
    await compare.getByLabel('A is the trace on screen').uncheck();
    await compare.getByLabel('Compare prompt A').fill(clean.join(', '));
    await compare.getByLabel('Compare prompt B').fill(corrupt.join(', '));
    await compare.getByRole('button', { name: 'Compare', exact: true }).click();
    await expect.poll(() => compare.getByTestId('compare-stats').count(), { timeout: 40_000 }).toBe(1);
    const onScreenId = await panel.getByTestId('patching-clean').getAttribute('data-trace');
    await panel.getByLabel('Corrupted prompt').fill('');
    await panel.getByRole('button', { name: 'Use the Compare pair' }).click();
    expect(await panel.getByLabel('Corrupted prompt').inputValue()).toBe(corrupt.join(', '));
    expect(await panel.getByTestId('patching-clean').textContent()).toMatch(/Compare’s prompt A, 49 tokens/);
    expect(await panel.getByTestId('patching-clean').getAttribute('data-trace')).not.toBe(onScreenId);
    await panel.getByLabel('Patching site').selectOption('residual');
    await panel.getByLabel('Patching to').fill('2');
    await panel.getByRole('button', { name: 'Patch the state' }).click();
    await expect.poll(async () => `${await summary.getAttribute('data-site')} ${await summary.getAttribute('data-to')}`, { timeout: 40_000 }).toBe('residual 2');
    const residual = parseCsv((await download(p, 'Export patching CSV')).toString()).slice(1).filter((r) => r.length > 1);
    expect(residual).toHaveLength(2 * 2);
    for (const [layer, token, , patchedDiff, restored] of residual) {
      const [l, t] = [Number(layer), Number(token)];
      const want = ld(runHooked(corrupt, (u) => (u !== t ? undefined : (at, before) => (at !== l ? undefined : act[t]![l]!.before.map((v, i) => v + act[t]![l]!.out[i]! - before[i]!)))));
      expect(Math.abs(Number(patchedDiff) - want), `residual layer ${l} token ${t}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(want)));
      if (t === 0) expect(Number(restored), `residual layer ${l} token 0`)[l === 0 ? 'toBeGreaterThanOrEqual' : 'toBeLessThan'](l === 0 ? 0.9 : 0.1);
    }
    expect(pageErrors).toEqual([]);
  });

  it('steering: pushing layer 1’s state by state(B) − state(A) turns the answer from L to E, as the float64 reference', async (test) => {
    if (!page || !traced) return test.skip('needs the traced page');
    const p = page;
    const { c, w, clean } = await cutCase();
    const a = clean.slice(0, 48);
    const b = [5, ...a.slice(1)];
    await expectTraceStats(p, '49 tokens · 2 layers · d_inner 256', pageErrors);
    await p.getByLabel('Layer', { exact: true }).selectOption('1');
    const panel = p.getByTestId('steering-panel');
    await panel.getByLabel('Steering prompt A').fill(a.join(', '));
    await panel.getByLabel('Steering prompt B').fill(b.join(', '));
    await panel.getByLabel('Steering layers').selectOption('selected');
    await panel.getByLabel('Steering tokens').fill('2');
    expect(await panel.getByLabel('Steering after token').inputValue()).toBe('47');
    await panel.getByRole('button', { name: 'Steer and continue' }).click();
    const summary = p.getByTestId('steering-summary');
    await expect.poll(() => summary.getAttribute('data-steered').catch(() => null), { timeout: 40_000 }).not.toBeNull();
    const feed = (list: readonly number[]) => {
      const r = feedSteps(c, w, list);
      return { s: r.states, logits: r.logits };
    };
    const argmax = (v: Float64Array) => v.indexOf(Math.max(...v));
    const greedy = (s: RefLayerState[], logits: Float64Array) => {
      const first = argmax(logits);
      return [first, argmax(refStep(c, w, first, s))];
    };
    const base = feed(clean);
    const { s } = feed(clean.slice(0, 48));
    const [sa, sb] = [feed(a).s, feed(b).s];
    for (const key of ['conv', 'ssm'] as const) s[1]![key] = s[1]![key].map((v, j) => v + sb[1]![key][j]! - sa[1]![key][j]!);
    const steered = greedy(s, refStep(c, w, clean[48]!, s));
    const baseline = greedy(base.s, base.logits);
    expect(await summary.getAttribute('data-baseline')).toBe(baseline.join(','));
    expect(await summary.getAttribute('data-steered')).toBe(steered.join(','));
    expect(baseline[0]).toBe(expected[0]);
    expect(steered[0]).toBe(5);
    expect(pageErrors).toEqual([]);
  });
});
