/**
 * Chat templates (issue 15, "Instruct models"): reading them from tokenizer_config.json and GGUF
 * metadata, rendering real-world-shaped templates, and refusing hostile ones with an error naming
 * the file.
 *
 * The templates below are written in the shapes instruct checkpoints ship (ChatML as
 * Falcon-Mamba-7B-instruct uses, Mistral's [INST] with its raise_exception role checks, a Zephyr-
 * like template with a default system message and block tags on their own lines). Every expected
 * string was derived by hand from Jinja's semantics with trim_blocks and lstrip_blocks on (as
 * transformers renders chat templates): a newline right after a block tag ({% … %}) is dropped,
 * newlines after {{ … }} and plain text are kept.
 */
import { describe, expect, it } from 'vitest';
import { ModelFileError } from '../../app/formats/errors';
import { isModelFileName, modelOwnFiles } from '../../app/library/model-files';
import { chatTemplateSource, inspectModel } from '../../app/arch/inspect';
import type { ModelFiles } from '../../app/formats/model-files';
import { memorySource } from '../../app/formats/source';
import { GT, tinyModel, writeGguf, type WriterKv } from '../support/gguf-writer';
import { tokenizerFor } from '../../app/tokenizer/index';
import { byteLevelTokenizer } from '../support/tokenizer-json';
import {
  applyChatTemplate,
  ChatTemplateError,
  chatTemplateFromFiles,
  chatTemplateFromGguf,
  chatTemplateFromTokenizerConfig,
  MAX_CHAT_TEMPLATE_CHARS,
  supportsSystemMessage,
  type ChatMessage,
  type ChatTemplate,
} from '../../app/tokenizer/chat-template';

const FILE = 'models/instruct/tokenizer_config.json';

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const MISTRAL =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

const WITH_SYSTEM = [
  "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}{% set rest = messages[1:] %}{% else %}{% set system = 'You are a helpful assistant.' %}{% set rest = messages %}{% endif %}",
  '<|system|>',
  '{{ system }}</s>',
  '{% for m in rest %}',
  "<|{{ m['role'] }}|>",
  "{{ m['content'] }}</s>",
  '{% endfor %}',
  '{% if add_generation_prompt %}',
  '<|assistant|>',
  '{% endif %}',
].join('\n');

const config = (fields: Record<string, unknown>) => JSON.stringify(fields);
const read = (fields: Record<string, unknown>) => chatTemplateFromTokenizerConfig(config(fields), FILE) as ChatTemplate;
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const system = (content: string): ChatMessage => ({ role: 'system', content });

/** What `body` threw (fails the test when it throws nothing). */
function thrown(body: () => unknown): Error {
  try {
    body();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('rendering real-world-shaped templates', () => {
  it('ChatML (Falcon-Mamba-instruct): each turn in <|im_start|>role … <|im_end|>, then the assistant opening', () => {
    const t = read({ chat_template: CHATML, bos_token: null, eos_token: '<|im_end|>' });
    const messages = [user('Hi'), assistant('Hello!'), user('Who are you?')];
    expect(applyChatTemplate(t, messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(applyChatTemplate(t, [user('Hi')], { addGenerationPrompt: false })).toBe('<|im_start|>user\nHi<|im_end|>\n');
    expect(supportsSystemMessage(t)).toBe(true);
  });

  it('Mistral [INST]: bos once, user turns in [INST] … [/INST], assistant turns closed by eos', () => {
    const t = read({ chat_template: MISTRAL, bos_token: { content: '<s>', lstrip: false }, eos_token: { content: '</s>' } });
    expect(t.bosToken).toBe('<s>');
    expect(t.eosToken).toBe('</s>');
    expect(applyChatTemplate(t, [user('Hello'), assistant('Hi there'), user('Bye')], { addGenerationPrompt: true })).toBe('<s>[INST] Hello [/INST]Hi there</s>[INST] Bye [/INST]');
    expect(supportsSystemMessage(t)).toBe(false);
  });

  it('Mistral: a bad role or order is the template’s own raise_exception, named with the file', () => {
    const t = read({ chat_template: MISTRAL, bos_token: '<s>', eos_token: '</s>' });
    const roleError = thrown(() => applyChatTemplate(t, [system('x'), user('y')], { addGenerationPrompt: true }));
    expect(roleError).toBeInstanceOf(ChatTemplateError);
    // The first message is system: "(role == 'user') != (index0 even)" is true first, so the alternation check raises.
    expect(roleError.message).toBe(`${FILE}: the chat template refused the conversation: Conversation roles must alternate user/assistant/user/assistant/...`);
    const orderError = thrown(() => applyChatTemplate(t, [user('a'), user('b')], { addGenerationPrompt: true }));
    expect(orderError.message).toContain('Conversation roles must alternate');
    // A system message in an assistant slot passes the alternation check and reaches the role check.
    const onlyError = thrown(() => applyChatTemplate(t, [user('a'), system('b')], { addGenerationPrompt: true }));
    expect(onlyError.message).toBe(`${FILE}: the chat template refused the conversation: Only user and assistant roles are supported!`);
  });

  it('a template with a system message: the given one, else its default; block-tag newlines trimmed', () => {
    const t = read({ chat_template: WITH_SYSTEM, eos_token: '</s>' });
    expect(applyChatTemplate(t, [system('Be brief.'), user('Hi')], { addGenerationPrompt: true })).toBe('<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n');
    expect(applyChatTemplate(t, [user('Hi'), assistant('Hello'), user('More')], { addGenerationPrompt: false })).toBe(
      '<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nMore</s>\n',
    );
    expect(supportsSystemMessage(t)).toBe(true);
  });

  it('a template that drops system messages does not support them', () => {
    const dropping = "{% for m in messages %}{% if m['role'] != 'system' %}{{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}";
    const t = read({ chat_template: dropping });
    expect(applyChatTemplate(t, [system('s'), user('u')], { addGenerationPrompt: true })).toBe('user: u\n');
    expect(supportsSystemMessage(t)).toBe(false);
  });
});

describe('reading tokenizer_config.json', () => {
  it('no chat_template: null (a base model)', () => {
    expect(chatTemplateFromTokenizerConfig(config({ bos_token: '<s>' }), FILE)).toBeNull();
    expect(chatTemplateFromTokenizerConfig(config({ chat_template: null }), FILE)).toBeNull();
  });

  it('a list of named templates: "default" is used', () => {
    const t = read({ chat_template: [{ name: 'tool_use', template: '{{ "tools" }}' }, { name: 'default', template: CHATML }] });
    expect(t.template).toBe(CHATML);
    expect(t.bosToken).toBe('');
    expect(t.file).toBe(FILE);
  });

  const refusals: [string, string, RegExp][] = [
    ['not JSON', '{"chat_template": "{{ x }}",', /is not valid JSON/],
    ['garbage bytes', '\u0000\u0001\u00ff\u{1F600}garbage', /is not valid JSON/],
    ['a JSON array', '[1, 2, 3]', /not a JSON object/],
    ['a number as template', config({ chat_template: 42 }), /chat_template must be a string or a list/],
    ['a list without "default"', config({ chat_template: [{ name: 'rag', template: 'x' }] }), /no template named "default" \(it has "rag"\)/],
    ['a list of junk', config({ chat_template: [17] }), /chat_template\[0\] must be \{"name": string, "template": string\}/],
    ['an empty template', config({ chat_template: '  ' }), /chat_template is empty/],
    ['a template that does not parse', config({ chat_template: '{% for m in %}{{ m }}{% endfor %}' }), /chat_template is not a valid Jinja template/],
    ['an unclosed block', config({ chat_template: '{% if true %}never closed' }), /chat_template is not a valid Jinja template/],
    ['a template over the size limit', config({ chat_template: 'x'.repeat(MAX_CHAT_TEMPLATE_CHARS + 1) }), new RegExp(`is ${MAX_CHAT_TEMPLATE_CHARS + 1} characters long`)],
    ['a bos_token of the wrong type', config({ chat_template: CHATML, bos_token: 5 }), /bos_token must be a string or \{"content": string\}, got 5/],
    ['an eos_token too long', config({ chat_template: CHATML, eos_token: 'e'.repeat(5000) }), /eos_token is 5000 characters long/],
    ['JSON nested 200,000 deep', '['.repeat(200_000) + ']'.repeat(200_000), /is not valid JSON|not a JSON object/],
  ];
  for (const [what, text, problem] of refusals) {
    it(`refuses ${what} with a ModelFileError naming the file`, () => {
      const t0 = performance.now();
      const error = thrown(() => chatTemplateFromTokenizerConfig(text, FILE));
      expect(error).toBeInstanceOf(ModelFileError);
      expect(error.message.startsWith(`${FILE}: `)).toBe(true);
      expect(error.message).toMatch(problem);
      expect(error.message.length).toBeLessThan(5000);
      // A JSON walk and a parse check: well under a second alone; 5 s on 2 cores shared by several test runs.
      expect(performance.now() - t0).toBeLessThan(5000);
    });
  }
});

describe('hostile templates stop with an error naming the file', () => {
  const run = (template: string) => thrown(() => applyChatTemplate(read({ chat_template: template }), [user('hi')], { addGenerationPrompt: true }));

  it('a huge range()', () => {
    const t0 = performance.now();
    const error = run('{% for i in range(1000000000) %}x{% endfor %}');
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error.message).toBe(`${FILE}: the chat template was stopped: range() of 1000000000 items (at most 100000)`);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('nested loops that would take 10^10 steps (stopped at the step budget)', () => {
    const t0 = performance.now();
    const error = run('{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}');
    expect(error.message).toMatch(new RegExp(`^${FILE}: the chat template was stopped: it took more than 500000 steps`));
    expect(performance.now() - t0).toBeLessThan(15_000);
  });

  it('a string that doubles without end', () => {
    const error = run("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}");
    expect(error.message).toMatch(/the chat template was stopped: it made a string of more than 16777216 characters/);
  });

  it('a macro that calls itself without end', () => {
    const error = run('{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}');
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error.message.startsWith(`${FILE}: the chat template `)).toBe(true);
  });

  it('a call of something undefined', () => {
    const error = run('{{ messages[0].content.nonexistent_method() }}');
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error.message.startsWith(`${FILE}: the chat template failed: `)).toBe(true);
  });
});

describe('GGUF tokenizer.chat_template', () => {
  const GGUF = 'models/falcon-mamba-instruct.Q4_K.gguf';
  const tokens = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', 'a'];
  it('reads the template and the bos/eos strings of the vocabulary', () => {
    const metadata = new Map<string, unknown>([
      ['tokenizer.chat_template', CHATML],
      ['tokenizer.ggml.tokens', tokens],
      ['tokenizer.ggml.bos_token_id', 0],
      ['tokenizer.ggml.eos_token_id', 2],
    ]);
    const t = chatTemplateFromGguf(GGUF, metadata as never);
    expect(t).toEqual({ file: GGUF, template: CHATML, bosToken: '<|endoftext|>', eosToken: '<|im_end|>' });
    expect(applyChatTemplate(t as ChatTemplate, [user('x')], { addGenerationPrompt: true })).toBe('<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n');
  });

  it('none: null; a non-string or broken one, or an eos id outside the vocabulary: an error naming the file', () => {
    expect(chatTemplateFromGguf(GGUF, new Map())).toBeNull();
    expect(thrown(() => chatTemplateFromGguf(GGUF, new Map([['tokenizer.chat_template', 7]]))).message).toBe(`${GGUF}: tokenizer.chat_template must be a string, got 7`);
    expect(thrown(() => chatTemplateFromGguf(GGUF, new Map([['tokenizer.chat_template', '{% if %}']]))).message).toMatch(/^models\/falcon-mamba-instruct\.Q4_K\.gguf: tokenizer\.chat_template is not a valid Jinja template/);
    const badEos = new Map<string, unknown>([['tokenizer.chat_template', CHATML], ['tokenizer.ggml.tokens', tokens], ['tokenizer.ggml.eos_token_id', 99]]);
    expect(thrown(() => chatTemplateFromGguf(GGUF, badEos as never)).message).toBe(`${GGUF}: tokenizer.ggml.eos_token_id (99) names no token of tokenizer.ggml.tokens`);
  });
});

describe('tokenizer_config.json is one of a model’s files', () => {
  it('listed as a side file and kept among the model’s own files when present', () => {
    expect(isModelFileName('tokenizer_config.json')).toBe(true);
    expect(modelOwnFiles({ format: 'safetensors', weightFiles: ['model.safetensors'] }, ['model.safetensors', 'config.json', 'tokenizer_config.json', 'notes.txt'])).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer_config.json',
    ]);
    expect(modelOwnFiles({ format: 'gguf', weightFiles: ['m.gguf'] }, ['m.gguf', 'tokenizer_config.json'])).toEqual(['m.gguf', 'tokenizer_config.json']);
  });
});

describe('a GGUF model’s chat template through inspection (chatTemplateSource)', () => {
  const kv = (key: string, value: string): WriterKv => ({ key, type: GT.STRING, value });
  function gguf(extra: WriterKv[]): Uint8Array {
    const { spec } = tinyModel({ arch: 'mamba', vocab: 16, dModel: 4, nLayer: 1 }, () => 0.5);
    spec.kv = [...spec.kv.filter((k) => !k.key.startsWith('tokenizer.')), ...extra];
    return writeGguf(spec);
  }
  function files(entries: Record<string, Uint8Array | string>): ModelFiles {
    const bytes = (f: string) => {
      const v = entries[f] as Uint8Array | string;
      return typeof v === 'string' ? new TextEncoder().encode(v) : v;
    };
    return {
      name: 'g',
      list: async () => Object.keys(entries),
      pathOf: (f) => `g/${f}`,
      open: async (f) => memorySource(`g/${f}`, bytes(f)),
      readText: async (f) => new TextDecoder().decode(bytes(f)),
    };
  }
  async function source(entries: Record<string, Uint8Array | string>) {
    const model = files(entries);
    return chatTemplateSource(model, await inspectModel(model));
  }

  it('the metadata’s template; a tokenizer_config.json beside the file wins; none: null', async () => {
    expect(await source({ 'm.gguf': gguf([kv('tokenizer.chat_template', CHATML)]) })).toEqual({
      template: { file: 'g/m.gguf', template: CHATML, bosToken: '', eosToken: '' },
    });
    const beside = await source({ 'm.gguf': gguf([kv('tokenizer.chat_template', CHATML)]), 'tokenizer_config.json': config({ chat_template: MISTRAL }) });
    expect(beside.template?.template).toBe(MISTRAL);
    expect(beside.template?.file).toBe('g/tokenizer_config.json');
    expect(await source({ 'm.gguf': gguf([]) })).toEqual({ template: null });
    const jinja = await source({ 'm.gguf': gguf([kv('tokenizer.chat_template', CHATML)]), 'chat_template.jinja': WITH_SYSTEM });
    expect(jinja.template?.file).toBe('g/chat_template.jinja');
  });

  it('a broken one is an error naming the file, not a failure to open the model', async () => {
    expect(await source({ 'm.gguf': gguf([kv('tokenizer.chat_template', '{% endfor %}')]) })).toEqual({
      template: null,
      error: expect.stringMatching(/^g\/m\.gguf: tokenizer\.chat_template is not a valid Jinja template/),
    });
    expect(await source({ 'm.gguf': gguf([]), 'tokenizer_config.json': '{oops' })).toEqual({
      template: null,
      error: expect.stringMatching(/^g\/tokenizer_config\.json: is not valid JSON/),
    });
  });
});

describe('a templated prompt is tokenized without the post-processor’s special tokens', () => {
  it('a tokenizer whose post-processor adds BOS: encode adds it by default, not with addSpecialTokens false', () => {
    const json = byteLevelTokenizer();
    const bos = '<|endoftext|>'; // id 260 in the tiny tokenizer
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [260], tokens: [bos] } },
    };
    const tokenizer = tokenizerFor(261, JSON.stringify(json), 't/tokenizer.json');
    // "ab" is bytes 97, 98 (no merge applies); a template's own "<|endoftext|>ab" keeps exactly one 260.
    expect(tokenizer.encode('ab')).toEqual([260, 97, 98]);
    expect(tokenizer.encode('ab', { addSpecialTokens: false })).toEqual([97, 98]);
    expect(tokenizer.encode(`${bos}ab`, { addSpecialTokens: false })).toEqual([260, 97, 98]);
  });
});

describe('chat_template.jinja and chat_template.json (newer transformers save the template apart)', () => {
  const cfg = { file: 'm/tokenizer_config.json', text: config({ chat_template: MISTRAL, bos_token: '<s>', eos_token: '</s>' }) };
  it('chat_template.jinja wins over chat_template.json and tokenizer_config.json; bos/eos still from tokenizer_config.json', () => {
    expect(
      chatTemplateFromFiles({ tokenizerConfig: cfg, jinja: { file: 'm/chat_template.jinja', text: CHATML }, json: { file: 'm/chat_template.json', text: config({ chat_template: WITH_SYSTEM }) } }),
    ).toEqual({ file: 'm/chat_template.jinja', template: CHATML, bosToken: '<s>', eosToken: '</s>' });
    expect(chatTemplateFromFiles({ tokenizerConfig: cfg, json: { file: 'm/chat_template.json', text: config({ chat_template: WITH_SYSTEM }) } })).toEqual({
      file: 'm/chat_template.json',
      template: WITH_SYSTEM,
      bosToken: '<s>',
      eosToken: '</s>',
    });
    expect(chatTemplateFromFiles({ jinja: { file: 'm/chat_template.jinja', text: CHATML } })).toEqual({ file: 'm/chat_template.jinja', template: CHATML, bosToken: '', eosToken: '' });
    expect(chatTemplateFromFiles({})).toBeNull();
  });

  it('a broken one is an error naming it', () => {
    expect(thrown(() => chatTemplateFromFiles({ jinja: { file: 'm/chat_template.jinja', text: '{% for %}' } })).message).toMatch(/^m\/chat_template\.jinja: the template is not a valid Jinja template/);
    expect(thrown(() => chatTemplateFromFiles({ json: { file: 'm/chat_template.json', text: '{}' } })).message).toBe('m/chat_template.json: has no "chat_template"');
    expect(thrown(() => chatTemplateFromFiles({ json: { file: 'm/chat_template.json', text: '[]' } })).message).toMatch(/^m\/chat_template\.json: is not a chat_template\.json/);
    expect(thrown(() => chatTemplateFromFiles({ tokenizerConfig: { file: 'm/tokenizer_config.json', text: 'nope' }, jinja: { file: 'm/chat_template.jinja', text: CHATML } })).message).toMatch(
      /^m\/tokenizer_config\.json: is not valid JSON/,
    );
  });
});
