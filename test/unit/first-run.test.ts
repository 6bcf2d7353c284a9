/**
 * Issue 15, first run and generation: what the studio reads from a model's studio.json (every
 * suggested prompt, the generation defaults, what to look at), the chips' text, why a Trace click
 * does nothing, and the token strip's keys.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { initialSettings } from '../../renderer/src/components/GeneratePanel';
import { parseIds, promptBoxText, promptChip, stripKeyAction, studioHints, traceBlocker } from '../../renderer/src/panels/selection';

const root = path.resolve(import.meta.dirname, '../..');
const studio = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(root, 'resources/models', name, 'studio.json'), 'utf8')) as Record<string, unknown>;

describe("studio.json's hints", () => {
  it("reads every suggested prompt of both bundled models (ids objects and strings), the generation defaults and what to look at", () => {
    const copyJson = studio('selective-copy');
    const copy = studioHints(copyJson);
    const copyPrompts = copyJson.suggested_prompts as { ids: number[] }[];
    expect(copy.prompts).toEqual(copyPrompts.map((p) => ({ kind: 'ids', ids: p.ids })));
    expect(copy.prompts).toHaveLength(3);
    expect(copy.suggestedIds).toEqual(copyPrompts[0]!.ids);
    expect(copy.whatToLookAt).toBe(copyJson.what_to_look_at);
    expect(copy.maxNewTokens).toBeUndefined(); // selective-copy's studio.json has no "generation"

    const byteJson = studio('shakespeare-byte');
    const bytes = studioHints(byteJson);
    expect(bytes.prompts).toEqual((byteJson.suggested_prompts as string[]).map((text) => ({ kind: 'text', text })));
    expect(bytes.prompts?.[0]).toEqual({ kind: 'text', text: 'ROMEO:\n' });
    expect(bytes.suggestedIds).toBeUndefined();
    const generation = byteJson.generation as { max_new_tokens: number; temperature: number };
    expect(bytes.maxNewTokens).toBe(generation.max_new_tokens);
    expect(bytes.temperature).toBe(generation.temperature);
    expect(bytes.whatToLookAt).toBe(byteJson.what_to_look_at);
  });

  it('skips malformed entries and keeps the well-formed ones', () => {
    const hints = studioHints({
      suggested_prompts: ['', 42, null, { ids: [] }, { ids: [1, -2] }, { ids: [1.5] }, 'ok', { ids: [3, 4] }, { text: 'also' }],
      generation: { max_new_tokens: 0, temperature: -1 },
      what_to_look_at: '   ',
    });
    expect(hints.prompts).toEqual([
      { kind: 'text', text: 'ok' },
      { kind: 'ids', ids: [3, 4] },
      { kind: 'text', text: 'also' },
    ]);
    expect(hints.suggestedIds).toBeUndefined(); // the first kept prompt is text
    expect(hints.maxNewTokens).toBeUndefined();
    expect(hints.temperature).toBeUndefined();
    expect(hints.whatToLookAt).toBeUndefined();
    expect(studioHints({ suggested_prompts: 'ROMEO', generation: [300], what_to_look_at: 7 })).toEqual({});
    expect(studioHints({ generation: { max_new_tokens: 1e9, temperature: 'hot' } })).toEqual({});
  });

  it('puts a prompt into a box as the box reads it back, and labels chips', () => {
    expect(promptBoxText({ kind: 'text', text: 'ROMEO:\n' })).toBe('ROMEO:\n');
    expect(parseIds(promptBoxText({ kind: 'ids', ids: [0, 17, 3] }))).toEqual([0, 17, 3]);
    expect(promptChip({ kind: 'text', text: 'ROMEO:\n' }, 0)).toEqual({ label: 'ROMEO:⏎', title: 'ROMEO:\n' });
    expect(promptChip({ kind: 'text', text: 'KING RICHARD III:\nNow is the ' }, 2, undefined, 12).label).toBe('KING RICHAR…');
    expect(promptChip({ kind: 'ids', ids: [0, 1, 17] }, 1, ['·', 'A', ...Array<string>(15).fill('x'), '?'])).toEqual({ label: 'Sequence 2 · 3 tokens', title: '·A?' });
    expect(promptChip({ kind: 'ids', ids: [0, 40] }, 0, ['a']).title).toBe('0 40');
  });

  it('generation defaults: the studio.json values when it has them, else the studio defaults', () => {
    const bytes = initialSettings(studioHints(studio('shakespeare-byte')));
    expect(bytes.maxTokens).toBe(300);
    expect(bytes.temperature).toBe(0.8);
    expect(bytes.liveTrace).toBe(true);
    const none = initialSettings({});
    expect(none.maxTokens).toBe(200);
    // On for every size (issue 18: the live trace's summaries are computed on the GPU).
    expect(none.liveTrace).toBe(true);
    expect(initialSettings({ temperature: 0 }).temperature).toBe(0);
  });
});

describe('Trace clicks that cannot run say why', () => {
  const idle = { tracing: false, generating: false, prompt: 'ROMEO:', idsOnly: false };
  it('names the reason, or none when the trace can run', () => {
    expect(traceBlocker(idle)).toBeNull();
    expect(traceBlocker({ ...idle, prompt: '' })).toMatch(/box is empty: type a prompt/);
    expect(traceBlocker({ ...idle, prompt: '  ', idsOnly: true })).toMatch(/box is empty: type token ids/);
    expect(traceBlocker({ ...idle, generating: true })).toMatch(/generation is running: stop it/);
    expect(traceBlocker({ ...idle, tracing: true, generating: true })).toMatch(/trace is already running/);
    expect(traceBlocker({ ...idle, idsOnly: true })).toMatch(/no tokenizer: type token ids/);
    expect(traceBlocker({ ...idle, idsOnly: true, prompt: '1, 2 3' })).toBeNull();
    expect(traceBlocker({ ...idle, prompt: ' ' })).toMatch(/box is empty/);
  });
});

describe('token strip keys', () => {
  it('Enter and Space pick the hovered token; arrows, Home and End move it', () => {
    expect(stripKeyAction('Enter', 3, 10)).toEqual({ pick: 3 });
    expect(stripKeyAction(' ', 0, 10)).toEqual({ pick: 0 });
    expect(stripKeyAction('Enter', null, 10)).toBeNull();
    expect(stripKeyAction('Enter', 12, 10)).toBeNull();
    expect(stripKeyAction('ArrowRight', 3, 10)).toEqual({ hover: 4 });
    expect(stripKeyAction('End', null, 10)).toEqual({ hover: 9 });
    expect(stripKeyAction('a', 3, 10)).toBeNull();
  });
});
