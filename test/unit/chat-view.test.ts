/**
 * The chat view's conversation (renderer/src/chat.ts): which messages the template sees and the
 * prompt each turn is — what a reply is generated from and what "Trace this turn" traces.
 * Expected strings derived by hand from the ChatML template (each message as
 * "<|im_start|>role\ncontent<|im_end|>\n", then "<|im_start|>assistant\n" with the generation prompt).
 */
import { describe, expect, it } from 'vitest';
import { conversationMessages, replyContent, replyPrompt, turnPrompt, type ChatTurn } from '../../renderer/src/chat';
import type { ChatTemplate } from '../../app/tokenizer/chat-template';

const CHATML: ChatTemplate = {
  file: 'm/tokenizer_config.json',
  template:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  bosToken: '',
  eosToken: '<|im_end|>',
};
const turns: ChatTurn[] = [
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!', stopReason: 'max-tokens' },
  { role: 'user', content: 'Bye' },
];

describe('chat view conversation', () => {
  it('the system message comes first when given, and is left out when blank', () => {
    expect(conversationMessages('Be brief.', turns, 0)).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
    expect(conversationMessages('  ', turns)).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
    ]);
  });

  it('a user turn is the conversation up to it plus the assistant opening; an assistant turn ends with its reply', () => {
    expect(turnPrompt(CHATML, '', turns, 0)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(turnPrompt(CHATML, '', turns, 1)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n');
    expect(turnPrompt(CHATML, 'S', turns, 2)).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(() => turnPrompt(CHATML, '', turns, 3)).toThrow(/no turn 3/);
  });

  it('the reply prompt is every turn plus the assistant opening (the user turn’s prompt when the last turn is the user’s)', () => {
    expect(replyPrompt(CHATML, '', turns)).toBe(turnPrompt(CHATML, '', turns, 2));
    expect(replyPrompt(CHATML, '', [])).toBe('<|im_start|>assistant\n');
  });

  it('a reply keeps its text without a trailing eos_token (the template writes the end of the turn)', () => {
    expect(replyContent('Fine, thanks.<|im_end|>', CHATML)).toBe('Fine, thanks.');
    expect(replyContent('Fine <|im_end|> thanks', CHATML)).toBe('Fine <|im_end|> thanks');
    expect(replyContent('Fine', { ...CHATML, eosToken: '' })).toBe('Fine');
    // Re-rendered, the turn has one end marker, not two.
    const turns2: ChatTurn[] = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: replyContent('Yo<|im_end|>', CHATML) }];
    expect(turnPrompt(CHATML, '', turns2, 1)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n');
  });
});
