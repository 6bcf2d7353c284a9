/**
 * The chat view's conversation, as pure functions: which messages the template sees, and the
 * prompt each turn is (what generating a reply starts from, and what "Trace this turn" traces).
 * Rendering is app/tokenizer/chat-template.ts's (the model's Jinja template).
 */
import { applyChatTemplate, type ChatMessage, type ChatTemplate } from '../../app/tokenizer/chat-template';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
  /** An assistant turn: why its generation stopped (the engine's stop reason). */
  stopReason?: string;
}

/**
 * The messages the template renders for the turns up to and including `upTo` (default: all):
 * the system message first when one is given (non-empty), then the turns in order.
 */
export function conversationMessages(system: string, turns: readonly ChatTurn[], upTo = turns.length - 1): ChatMessage[] {
  const messages: ChatMessage[] = system.trim() !== '' ? [{ role: 'system', content: system }] : [];
  for (const turn of turns.slice(0, upTo + 1)) messages.push({ role: turn.role, content: turn.content });
  return messages;
}

/**
 * The prompt of turn `index`: for a user turn, the conversation up to it with the assistant's
 * opening (what its reply was, or will be, generated from); for an assistant turn, the
 * conversation up to and including its reply.
 */
export function turnPrompt(template: ChatTemplate, system: string, turns: readonly ChatTurn[], index: number): string {
  const turn = turns[index];
  if (!turn) throw new RangeError(`no turn ${index} (the conversation has ${turns.length})`);
  return applyChatTemplate(template, conversationMessages(system, turns, index), { addGenerationPrompt: turn.role === 'user' });
}

/** The prompt the next reply is generated from: every turn, then the assistant's opening. */
export function replyPrompt(template: ChatTemplate, system: string, turns: readonly ChatTurn[]): string {
  return applyChatTemplate(template, conversationMessages(system, turns), { addGenerationPrompt: true });
}

/**
 * A generated reply as the conversation keeps it: without a trailing end-of-turn token (the
 * template's eos_token, when the generation emitted it as text), which the template writes
 * itself when it renders the turn.
 */
export function replyContent(text: string, template: ChatTemplate): string {
  const eos = template.eosToken;
  return eos !== '' && text.endsWith(eos) ? text.slice(0, -eos.length) : text;
}
