/**
 * The chat view in the web build (issue 15, "Instruct models"): a model folder whose
 * tokenizer_config.json has a chat template, opened through the file input, shows the chat; a
 * message gets a streamed reply generated from the templated conversation, and "Trace this turn"
 * traces the templated conversation up to that turn. The bundled models have no template, so the
 * folder is shakespeare-byte's files plus a tokenizer_config.json written here (a play-script
 * template: shakespeare-byte reads bytes, so the traced token count is the prompt's UTF-8 length).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { findChromium } from '../support/browser';
import { openAndLoadModel, useWebApp } from '../support/web-app';

const bundled = path.resolve(import.meta.dirname, '../../resources/models/shakespeare-byte');
const dir = mkdtempSync(path.join(tmpdir(), 'chat-e2e-'));
for (const f of ['config.json', 'model.safetensors']) copyFileSync(path.join(bundled, f), path.join(dir, f));
const TEMPLATE = "{% for m in messages %}{{ m['role'] | upper }}:\n{{ m['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:\n{% endif %}";
writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: TEMPLATE, eos_token: '<|end|>' }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const chromiumFound = findChromium();
let page: Page | null = null;
const pageErrors: string[] = [];
useWebApp(chromiumFound, { width: 1280, height: 800 }, pageErrors, (p) => (page = p));

const TOKENS = 6;
/** The template applied by hand to [user "Speak."] with the generation prompt. */
const PROMPT = 'USER:\nSpeak.\n\nASSISTANT:\n';

describe('chat view in the web build', () => {
  it('opens a model with a chat template, streams a reply to a message, and traces the turn', async (test) => {
    if (!page) return test.skip('reason' in chromiumFound ? chromiumFound.reason : 'browser did not start');
    const p = page;
    await openAndLoadModel(p, ['config.json', 'model.safetensors', 'tokenizer_config.json'].map((f) => path.join(dir, f)));

    // The chat view is shown (the model has a template), and says where the template is from.
    expect(await p.getByRole('button', { name: 'Chat', exact: true }).getAttribute('aria-pressed')).toBe('true');
    await expect.poll(() => p.getByTestId('chat-panel').locator('.chat-source').textContent()).toBe('Chat template from tokenizer_config.json');

    await p.getByLabel('Chat max tokens').fill(String(TOKENS));
    await p.getByLabel('Chat temperature').fill('0');
    await p.getByLabel('Chat message').fill('Speak.');
    await p.getByLabel('Chat message').press('Enter');
    // The reply streams into a pending turn, then becomes the assistant's turn.
    await p.getByTestId('chat-streaming').waitFor({ state: 'attached', timeout: 60_000 });
    const reply = p.getByTestId('chat-turns').locator('li[data-role="assistant"]:not(.pending)');
    await expect.poll(() => reply.count(), { timeout: 120_000 }).toBe(1);
    expect(await reply.locator('.chat-stop').textContent()).toBe('stopped: max-tokens');
    const replyText = (await reply.locator('.chat-content').textContent()) ?? '';
    expect(await p.getByTestId('chat-error').count()).toBe(0);

    // The reply is what greedy generation from the hand-templated prompt gives in the Prompt view.
    await p.getByRole('button', { name: 'Prompt', exact: true }).click();
    await p.getByLabel('Prompt', { exact: true }).fill(PROMPT);
    await p.getByLabel('Max tokens', { exact: true }).fill(String(TOKENS));
    await p.getByLabel('Temperature', { exact: true }).fill('0');
    await p.getByRole('button', { name: 'Generate' }).click();
    await expect.poll(() => p.getByTestId('generation-stats').textContent(), { timeout: 120_000 }).toMatch(new RegExp(`^${TOKENS} tokens · .* stopped: max-tokens`));
    expect((await p.getByTestId('generation-output').textContent())?.slice(PROMPT.length)).toBe(replyText);

    // The rendered prompt (what the next reply would be generated from) and tracing the reply's turn.
    await p.getByRole('button', { name: 'Chat', exact: true }).click();
    const turnPrompt = `${PROMPT}${replyText}\n\n`;
    expect(await p.getByTestId('chat-rendered').textContent()).toBe(`${turnPrompt}ASSISTANT:\n`);
    await p.getByRole('button', { name: 'Trace turn 2' }).click();
    await expect
      .poll(() => p.getByTestId('trace-stats').textContent().catch(() => ''), { timeout: 120_000 })
      .toBe(`${new TextEncoder().encode(turnPrompt).length} tokens · 4 layers · d_inner 512`);
    // The trace box shows what was traced.
    expect(await p.getByLabel('Input to trace').inputValue()).toBe(turnPrompt);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, 240_000);
});
