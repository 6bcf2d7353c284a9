/**
 * Chat templates: how an instruct model wants a conversation written as one prompt. The template
 * is Jinja text from the model's `chat_template.jinja`, `chat_template.json` or
 * `tokenizer_config.json` (`chat_template`, a string or a list of `{name, template}` of which
 * "default" is used), or its GGUF metadata (`tokenizer.chat_template`),
 * rendered with `messages`, `bos_token`, `eos_token` and `add_generation_prompt` as transformers'
 * `apply_chat_template` renders it. The Jinja engine is @huggingface/jinja (the one
 * transformers.js uses); this module only reads the template from the files, bounds it, and runs
 * it under a budget:
 * - the template text: at most MAX_CHAT_TEMPLATE_CHARS, and it must parse (checked when read);
 * - rendering: at most MAX_TEMPLATE_STEPS evaluations, `range()` at most MAX_RANGE_ITEMS items,
 *   no intermediate string longer than MAX_RENDERED_CHARS, so a template that loops or grows
 *   without end stops with an error instead of hanging the UI;
 * - `raise_exception(msg)` (how templates refuse e.g. a role they do not know) becomes a
 *   ChatTemplateError naming the file and the template's own message.
 * Every problem is a ModelFileError naming the file the template came from.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { ModelFileError, preview } from '../formats/errors.js';
import type { GgufValue } from '../formats/gguf-reader.js';

/** Longest template text accepted (real ones are a few KiB). */
export const MAX_CHAT_TEMPLATE_CHARS = 256 * 1024;
/** Longest bos/eos token string accepted. */
export const MAX_SPECIAL_TOKEN_CHARS = 1024;
/** Evaluations (statements and expressions) one rendering may take. */
export const MAX_TEMPLATE_STEPS = 500_000;
/** Longest list `range()` may make inside a template. */
export const MAX_RANGE_ITEMS = 100_000;
/** Longest string (the result or any intermediate one) a rendering may make. */
export const MAX_RENDERED_CHARS = 16 * 1024 * 1024;

export const GGUF_CHAT_TEMPLATE_KEY = 'tokenizer.chat_template';

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** A model's chat template and the values its variables take. */
export interface ChatTemplate {
  /** Where the template came from (tokenizer_config.json's path, or the GGUF file), for errors. */
  file: string;
  template: string;
  bosToken: string;
  eosToken: string;
}

/** A template that failed to render: its file, and why (the template's own message for raise_exception). */
export class ChatTemplateError extends ModelFileError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'ChatTemplateError';
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Checks a template text (bounded, parses); returns it. */
function checkTemplateText(file: string, where: string, text: string): string {
  if (text.length > MAX_CHAT_TEMPLATE_CHARS) {
    throw new ModelFileError(file, `${where} is ${text.length} characters long; a chat template may have at most ${MAX_CHAT_TEMPLATE_CHARS}`);
  }
  if (text.trim() === '') throw new ModelFileError(file, `${where} is empty`);
  try {
    new Template(text);
  } catch (error) {
    throw new ModelFileError(file, `${where} is not a valid Jinja template: ${errorText(error)}`);
  }
  return text;
}

/** A special token as tokenizer_config.json writes it: a string, `{content: string, …}`, or null/absent (''). */
function specialToken(file: string, key: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  const content = typeof value === 'object' && !Array.isArray(value) ? (value as { content?: unknown }).content : value;
  if (typeof content !== 'string') throw new ModelFileError(file, `${key} must be a string or {"content": string}, got ${preview(value)}`);
  if (content.length > MAX_SPECIAL_TOKEN_CHARS) throw new ModelFileError(file, `${key} is ${content.length} characters long; at most ${MAX_SPECIAL_TOKEN_CHARS}`);
  return content;
}

/** A JSON file's text as an object; `what` names what it should be in errors. */
function jsonObject(text: string, file: string, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelFileError(file, `is not valid JSON (${errorText(error)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelFileError(file, `is not a ${what} (not a JSON object, but ${preview(json, 40)})`);
  return json as Record<string, unknown>;
}

/** A `chat_template` value (a string, or a list of {name, template} of which "default" is used), checked; null when absent. */
function templateValue(file: string, raw: unknown): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw === 'string') return checkTemplateText(file, 'chat_template', raw);
  if (!Array.isArray(raw)) throw new ModelFileError(file, `chat_template must be a string or a list of {"name", "template"}, got ${preview(raw)}`);
  const names: string[] = [];
  let chosen: string | null = null;
  for (const [i, item] of raw.entries()) {
    const { name, template: t } = (typeof item === 'object' && item !== null ? item : {}) as { name?: unknown; template?: unknown };
    if (typeof name !== 'string' || typeof t !== 'string') {
      throw new ModelFileError(file, `chat_template[${i}] must be {"name": string, "template": string}, got ${preview(item)}`);
    }
    names.push(name);
    if (name === 'default') chosen = t;
  }
  if (chosen === null) throw new ModelFileError(file, `chat_template lists no template named "default" (it has ${names.length > 0 ? names.map((n) => JSON.stringify(n)).join(', ') : 'none'})`);
  return checkTemplateText(file, 'chat_template "default"', chosen);
}

/**
 * The chat template of a tokenizer_config.json's text, or null when it has none. `file` names it
 * in errors: not JSON, not an object, a `chat_template` of the wrong shape, too long, not parsing,
 * or bos/eos tokens of the wrong type.
 */
export function chatTemplateFromTokenizerConfig(text: string, file: string): ChatTemplate | null {
  return chatTemplateFromFiles({ tokenizerConfig: { file, text } });
}

/** A file's path (for errors) and text. */
export interface TextFile {
  file: string;
  text: string;
}

/**
 * A Hugging Face folder's chat template, from the files that may hold it, in transformers' order:
 * `chat_template.jinja` (the template as it is), else `chat_template.json` (`{"chat_template": …}`),
 * else tokenizer_config.json's `chat_template`; `bos_token` / `eos_token` always come from
 * tokenizer_config.json (when there is one). Null when none holds a template. Every problem is a
 * ModelFileError naming the file.
 */
export function chatTemplateFromFiles(files: { tokenizerConfig?: TextFile; jinja?: TextFile; json?: TextFile }): ChatTemplate | null {
  const config = files.tokenizerConfig ? jsonObject(files.tokenizerConfig.text, files.tokenizerConfig.file, 'tokenizer_config.json') : {};
  const configFile = files.tokenizerConfig?.file ?? 'tokenizer_config.json';
  let found: { file: string; template: string } | null = null;
  if (files.jinja) {
    found = { file: files.jinja.file, template: checkTemplateText(files.jinja.file, 'the template', files.jinja.text) };
  } else if (files.json) {
    const t = templateValue(files.json.file, jsonObject(files.json.text, files.json.file, 'chat_template.json').chat_template);
    if (t === null) throw new ModelFileError(files.json.file, 'has no "chat_template"');
    found = { file: files.json.file, template: t };
  } else if (files.tokenizerConfig) {
    const t = templateValue(configFile, config.chat_template);
    if (t !== null) found = { file: configFile, template: t };
  }
  if (!found) return null;
  return { ...found, bosToken: specialToken(configFile, 'bos_token', config.bos_token), eosToken: specialToken(configFile, 'eos_token', config.eos_token) };
}

/**
 * The chat template in a GGUF file's metadata (`tokenizer.chat_template`), or null when it has
 * none; bos/eos are the vocabulary's strings at `tokenizer.ggml.{bos,eos}_token_id` ('' without).
 */
export function chatTemplateFromGguf(file: string, metadata: ReadonlyMap<string, GgufValue>): ChatTemplate | null {
  const raw = metadata.get(GGUF_CHAT_TEMPLATE_KEY);
  if (raw === undefined) return null;
  if (typeof raw !== 'string') throw new ModelFileError(file, `${GGUF_CHAT_TEMPLATE_KEY} must be a string, got ${preview(raw)}`);
  const template = checkTemplateText(file, GGUF_CHAT_TEMPLATE_KEY, raw);
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const tokenAt = (key: string): string => {
    const id = metadata.get(key);
    if (id === undefined || !Array.isArray(tokens)) return '';
    const token = typeof id === 'number' && Number.isSafeInteger(id) ? tokens[id] : undefined;
    if (typeof token !== 'string') throw new ModelFileError(file, `${key} (${preview(id)}) names no token of tokenizer.ggml.tokens`);
    return specialToken(file, key, token);
  };
  return { file, template, bosToken: tokenAt('tokenizer.ggml.bos_token_id'), eosToken: tokenAt('tokenizer.ggml.eos_token_id') };
}

class BudgetExceeded extends Error {}
class Raised extends Error {}

/** An Interpreter that counts its evaluations and the length of the strings they make. */
class BoundedInterpreter extends Interpreter {
  private steps = 0;
  override evaluate(...args: Parameters<Interpreter['evaluate']>): ReturnType<Interpreter['evaluate']> {
    if (++this.steps > MAX_TEMPLATE_STEPS) throw new BudgetExceeded(`it took more than ${MAX_TEMPLATE_STEPS} steps (does it loop?)`);
    const value = super.evaluate(...args);
    if (typeof value.value === 'string' && value.value.length > MAX_RENDERED_CHARS) {
      throw new BudgetExceeded(`it made a string of more than ${MAX_RENDERED_CHARS} characters`);
    }
    return value;
  }
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** Python's strftime for the directives chat templates use (the date in a system prompt); others are kept as written. */
function strftimeNow(format: unknown): string {
  const d = new Date();
  const parts: Record<string, string> = {
    Y: String(d.getFullYear()),
    m: pad2(d.getMonth() + 1),
    d: pad2(d.getDate()),
    B: MONTHS[d.getMonth()] as string,
    b: (MONTHS[d.getMonth()] as string).slice(0, 3),
    H: pad2(d.getHours()),
    M: pad2(d.getMinutes()),
    '%': '%',
  };
  return String(format).replace(/%([YmdBbHM%])/g, (_, c: string) => parts[c] as string);
}

/** Python's range(), refusing lists longer than MAX_RANGE_ITEMS. */
function boundedRange(start: unknown, stop?: unknown, step: unknown = 1): number[] {
  let [a, b] = [Number(start), Number(stop)];
  if (stop === undefined || stop === null) [a, b] = [0, a];
  const s = Number(step);
  if (![a, b, s].every(Number.isFinite) || s === 0) throw new Error('range() needs finite numbers and a step other than 0');
  const count = Math.max(0, Math.ceil((b - a) / s));
  if (count > MAX_RANGE_ITEMS) throw new BudgetExceeded(`range() of ${count} items (at most ${MAX_RANGE_ITEMS})`);
  return Array.from({ length: count }, (_, i) => a + i * s);
}

let parsedCache: { text: string; template: Template } | null = null;
function parsed(text: string): Template {
  if (parsedCache?.text !== text) parsedCache = { text, template: new Template(text) };
  return parsedCache.template;
}

export interface ApplyOptions {
  /** End with the opening of an assistant turn (what generation continues from). */
  addGenerationPrompt: boolean;
}

/**
 * The conversation written as one prompt by the model's template. Throws a ChatTemplateError
 * naming the template's file when it does not parse, raises (raise_exception), fails, or exceeds
 * the budget (see the module comment).
 */
export function applyChatTemplate(chat: ChatTemplate, messages: readonly ChatMessage[], options: ApplyOptions): string {
  let template: Template;
  try {
    template = parsed(chat.template);
  } catch (error) {
    throw new ChatTemplateError(chat.file, `the chat template is not a valid Jinja template: ${errorText(error)}`);
  }
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: unknown) => {
      throw new Raised(String(message));
    },
    range: boundedRange,
    strftime_now: strftimeNow,
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    bos_token: chat.bosToken,
    eos_token: chat.eosToken,
    add_generation_prompt: options.addGenerationPrompt,
  };
  for (const [name, value] of Object.entries(globals)) env.set(name, value);
  let result: unknown;
  try {
    result = new BoundedInterpreter(env).run(template.parsed).value;
  } catch (error) {
    if (error instanceof Raised) throw new ChatTemplateError(chat.file, `the chat template refused the conversation: ${error.message}`);
    if (error instanceof BudgetExceeded) throw new ChatTemplateError(chat.file, `the chat template was stopped: ${error.message}`);
    if (error instanceof RangeError) throw new ChatTemplateError(chat.file, `the chat template failed: ${error.message} (does it recurse without end?)`);
    throw new ChatTemplateError(chat.file, `the chat template failed: ${errorText(error)}`);
  }
  if (typeof result !== 'string') throw new ChatTemplateError(chat.file, 'the chat template did not render to text');
  return result;
}

/**
 * Whether the template takes a system message: it renders a conversation that starts with one
 * without raising, and the system text appears in the prompt (templates without a system role
 * raise, or drop it).
 */
export function supportsSystemMessage(chat: ChatTemplate): boolean {
  const probe = 'studio-system-probe-7f3a';
  try {
    return applyChatTemplate(chat, [{ role: 'system', content: probe }, { role: 'user', content: 'hi' }], { addGenerationPrompt: true }).includes(probe);
  } catch {
    return false;
  }
}
