/**
 * Issue 15, defect 4: notices expire (info), belong to a model (selecting another drops them),
 * count repeats instead of piling up; and defect 5: the generation keeps the generated token ids.
 */
import { describe, expect, it } from 'vitest';
import { addNotice, dismissNotice, enterContext, expireNotices, INFO_NOTICE_MS, MAX_NOTICES, nextExpiry, type Notice } from '../../renderer/src/notices';
import { createStudioStore } from '../../renderer/src/store';

describe('notices', () => {
  it('info expires after INFO_NOTICE_MS; errors stay until dismissed', () => {
    let list: Notice[] = [];
    list = addNotice(list, { kind: 'info', text: 'loaded again' }, 1000, 1);
    list = addNotice(list, { kind: 'error', text: 'GPU error' }, 1000, 2);
    expect(nextExpiry(list)).toBe(1000 + INFO_NOTICE_MS);
    expect(expireNotices(list, 1000 + INFO_NOTICE_MS - 1)).toBe(list); // nothing due: the same list
    const later = expireNotices(list, 1000 + INFO_NOTICE_MS);
    expect(later.map((n) => n.text)).toEqual(['GPU error']);
    expect(nextExpiry(later)).toBeNull();
    expect(expireNotices(later, 1e12)).toBe(later);
    expect(dismissNotice(later, 2)).toEqual([]);
  });

  it('the same kind and text again is one notice with a count, moved last, its expiry renewed', () => {
    let list: Notice[] = [];
    list = addNotice(list, { kind: 'info', text: 'a' }, 0, 1);
    list = addNotice(list, { kind: 'error', text: 'b' }, 0, 2);
    list = addNotice(list, { kind: 'info', text: 'a' }, 500, 3);
    expect(list.map((n) => [n.id, n.text, n.count])).toEqual([
      [2, 'b', 1],
      [1, 'a', 2],
    ]);
    expect(list[1]!.expiresAt).toBe(500 + INFO_NOTICE_MS);
    // Another kind or another model's context is another notice.
    list = addNotice(list, { kind: 'error', text: 'a' }, 600, 4);
    list = addNotice(list, { kind: 'error', text: 'b', context: 'm1' }, 600, 5);
    expect(list).toHaveLength(4);
    for (let i = 0; i < 10; i++) list = addNotice(list, { kind: 'error', text: `e${i}` }, 700, 10 + i);
    expect(list).toHaveLength(MAX_NOTICES);
    expect(list.at(-1)!.text).toBe('e9');
  });

  it("entering another context drops the notices of the others, keeps the app's and its own", () => {
    let list: Notice[] = [];
    list = addNotice(list, { kind: 'error', text: 'no tokenizer', context: 'bundled:selective-copy' }, 0, 1);
    list = addNotice(list, { kind: 'error', text: 'device lost' }, 0, 2);
    list = addNotice(list, { kind: 'error', text: 'bad prompt', context: 'bundled:shakespeare-byte' }, 0, 3);
    expect(enterContext(list, 'bundled:shakespeare-byte').map((n) => n.text)).toEqual(['device lost', 'bad prompt']);
    expect(enterContext(list, null).map((n) => n.text)).toEqual(['device lost']);
    const kept = enterContext(list, 'bundled:shakespeare-byte');
    expect(enterContext(kept, 'bundled:shakespeare-byte')).toBe(kept);
  });

  it('the store: dedupes, clears a model’s notices when another is selected, expires info', () => {
    const store = createStudioStore();
    const s = () => store.getState();
    s().notify('error', 'This model has no tokenizer', 'bundled:selective-copy');
    s().notify('error', 'This model has no tokenizer', 'bundled:selective-copy');
    s().notify('info', 'Loaded again');
    expect(s().notices.map((n) => [n.text, n.count])).toEqual([
      ['This model has no tokenizer', 2],
      ['Loaded again', 1],
    ]);
    s().selectModel('bundled:shakespeare-byte');
    expect(s().notices.map((n) => n.text)).toEqual(['Loaded again']);
    s().expireNotices(Date.now() + INFO_NOTICE_MS + 1);
    expect(s().notices).toEqual([]);
  });
});

describe('generation state', () => {
  it('keeps the generated ids in order (id-only models show them by label), not only the text', () => {
    const store = createStudioStore();
    const s = () => store.getState();
    s().startGeneration('m', '17, 1');
    s().appendGenerated('m', '12 ', 5, 12);
    s().appendGenerated('m', '13 ', 6, 13);
    s().appendGenerated('m', '', null, -1); // a decoder's tail: no token
    s().appendGenerated('other', '1 ', 6, 1); // another model's token: ignored
    expect(s().generation).toMatchObject({ ids: [12, 13], output: '12 13 ', tokens: 2, tokensPerSecond: 6 });
    s().startGeneration('m', '1');
    expect(s().generation?.ids).toEqual([]);
  });

  it('a picked suggested prompt is announced with a new sequence number each time', () => {
    const store = createStudioStore();
    store.getState().suggestPrompt('m', 'ROMEO:\n');
    const first = store.getState().promptSuggestion;
    store.getState().suggestPrompt('m', 'ROMEO:\n');
    expect(store.getState().promptSuggestion).toEqual({ modelId: 'm', text: 'ROMEO:\n', seq: (first?.seq ?? 0) + 1 });
  });
});
