/**
 * Instruct models through the engine (issue 15): a model folder with a tokenizer_config.json
 * carries its chat template to LoadedModelInfo, and a prompt written by the template generates.
 * The bundled models have no template, so the fixture is shakespeare-byte's files plus a
 * tokenizer_config.json written here, opened as File objects (as web mode opens picked files).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../app/engine/engine';
import type { LoadedModelInfo } from '../../app/engine/protocol';
import { applyChatTemplate } from '../../app/tokenizer/chat-template';
import { useNodeGpu } from '../support/gpu';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bundled = path.join(repoRoot, 'resources/models/shakespeare-byte');
const FOLDER = 'shakespeare-chat';
/** A play-script template: each turn as "ROLE:\ncontent\n\n", then "ASSISTANT:\n" to be continued. */
const TEMPLATE = "{% for m in messages %}{{ m['role'] | upper }}:\n{{ m['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}ASSISTANT:\n{% endif %}";

function modelFiles(tokenizerConfig: string): File[] {
  const files = ['config.json', 'model.safetensors'].map((name) => new File([readFileSync(path.join(bundled, name))], name));
  return [...files, new File([tokenizerConfig], 'tokenizer_config.json')];
}

let gpu: GPU | null = null;
let skipReason = '';
useNodeGpu((found) => ({ gpu, skipReason } = found));

async function load(engine: Engine, files: File[]): Promise<LoadedModelInfo> {
  expect(await engine.handle({ id: 1, kind: 'init', params: {} })).toMatchObject({ ok: true });
  const reply = await engine.handle({ id: 2, kind: 'loadModel', params: { modelId: 'web:chat', source: { kind: 'files', folder: FOLDER, files } } });
  if (!reply.ok) throw new Error(reply.error);
  return reply.result as LoadedModelInfo;
}

describe('engine: chat templates', () => {
  it('LoadedModelInfo carries the template and bos/eos; the templated prompt generates', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const info = await load(engine, modelFiles(JSON.stringify({ chat_template: TEMPLATE, bos_token: { content: '<s>' }, eos_token: '</s>' })));
    expect(info.chatTemplate).toEqual({ file: `${FOLDER}/tokenizer_config.json`, template: TEMPLATE, bosToken: '<s>', eosToken: '</s>' });
    expect(info.chatTemplateError).toBeUndefined();

    const rendered = applyChatTemplate(info.chatTemplate!, [{ role: 'user', content: 'Speak, ROMEO.' }], { addGenerationPrompt: true });
    // By hand from the template: role upper-cased, ":\n", content, "\n\n"; then the generation prompt.
    expect(rendered).toBe('USER:\nSpeak, ROMEO.\n\nASSISTANT:\n');
    const reply = await engine.handle({
      id: 3,
      kind: 'generate',
      params: { modelId: 'web:chat', prompt: { text: rendered }, maxTokens: 8, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, stopStrings: [] },
    });
    if (!reply.ok) throw new Error(reply.error);
    const summary = reply.result as { promptIds: number[]; ids: number[]; stopReason: string };
    // shakespeare-byte's tokens are the UTF-8 bytes of the text (its studio.json): the prompt is exactly the rendered text.
    expect(summary.promptIds).toEqual([...new TextEncoder().encode(rendered)]);
    expect(summary.ids).toHaveLength(8);
    expect(summary.stopReason).toBe('max-tokens');
    expect(await engine.handle({ id: 4, kind: 'unloadModel', params: {} })).toMatchObject({ ok: true });
  });

  it('a broken tokenizer_config.json: the model loads, without a template, and the error names the file', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const info = await load(engine, modelFiles(JSON.stringify({ chat_template: '{% for m in messages %}never closed' })));
    expect(info.chatTemplate).toBeUndefined();
    expect(info.chatTemplateError).toMatch(/^shakespeare-chat\/tokenizer_config\.json: chat_template is not a valid Jinja template/);
    expect(info.warnings).toContain(info.chatTemplateError);
    await engine.handle({ id: 3, kind: 'unloadModel', params: {} });
  });

  it('no tokenizer_config.json: no template, no error', async (test) => {
    if (!gpu) return test.skip(skipReason);
    const engine = new Engine(gpu, () => undefined, 'node');
    const files = modelFiles('').filter((f) => f.name !== 'tokenizer_config.json');
    const info = await load(engine, files);
    expect(info.chatTemplate).toBeUndefined();
    expect(info.chatTemplateError).toBeUndefined();
    await engine.handle({ id: 3, kind: 'unloadModel', params: {} });
  });
});
