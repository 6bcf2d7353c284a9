/**
 * The token strip's hover card helpers: the display text of any token id (studio.json labels,
 * readable bytes, the prompt's BPE texts, else the id) and the top next tokens of one position.
 */
import { describe, expect, it } from 'vitest';
import { readableByte } from '../../app/tokenizer/readable';
import { tokenNamer, topNextAt } from '../../renderer/src/panels/selection';

describe('token names', () => {
  it('shows bytes readably, as the engine shows prompt bytes', () => {
    expect(readableByte(65)).toBe('A');
    expect(readableByte(32)).toBe(' ');
    expect(readableByte(126)).toBe('~');
    expect(readableByte(10)).toBe('⏎');
    expect(readableByte(9)).toBe('⇥');
    expect(readableByte(13)).toBe('␍');
    expect(readableByte(0)).toBe('0x00');
    expect(readableByte(127)).toBe('0x7F');
    expect(readableByte(0xc3)).toBe('0xC3');
    const bytes = tokenNamer({ tokenizer: 'bytes', ids: [], tokens: [] });
    expect([104, 105, 10, 255].map(bytes)).toEqual(['h', 'i', '⏎', '0xFF']);
    expect(bytes(300)).toBe('300');
  });

  it('prefers studio.json labels, then the prompt texts of BPE ids, then the id', () => {
    const labelled = tokenNamer({ labels: ['·', 'A', 'B', '?'], tokenizer: 'none', ids: [0, 1], tokens: ['0', '1'] });
    expect([0, 1, 2, 3, 4].map(labelled)).toEqual(['·', 'A', 'B', '?', '4']);
    const bpe = tokenNamer({ tokenizer: 'bpe', ids: [510, 3158, 510], tokens: ['The', ' quick', 'The'] });
    expect(bpe(3158)).toBe(' quick');
    expect(bpe(510)).toBe('The');
    expect(bpe(7)).toBe('7');
    expect(tokenNamer({ tokenizer: 'none', ids: [5], tokens: ['5'] })(9)).toBe('9');
  });
});

describe('top next tokens', () => {
  const topNext = { k: 3, ids: Int32Array.from([7, 2, 9, 1, 4, 5]), probs: Float32Array.from([0.1, 0.7, 0.2, 0.5, 0.3, 0.2]) };
  it('gives one row, most likely first, at most n', () => {
    expect(topNextAt(topNext, 0)).toEqual([
      { id: 2, prob: Math.fround(0.7) },
      { id: 9, prob: Math.fround(0.2) },
      { id: 7, prob: Math.fround(0.1) },
    ]);
    expect(topNextAt(topNext, 1, 2).map((e) => e.id)).toEqual([1, 4]);
  });
  it('gives nothing outside the rows', () => {
    expect(topNextAt(topNext, 2)).toEqual([]);
    expect(topNextAt(topNext, -1)).toEqual([]);
    expect(topNextAt({ k: 0, ids: new Int32Array(0), probs: new Float32Array(0) }, 0)).toEqual([]);
  });
  it('leaves out the empty slots of a live trace (id −1, probability NaN)', () => {
    const live = { k: 2, ids: Int32Array.from([-1, -1, 3, 8]), probs: Float32Array.from([NaN, NaN, 0.6, 0.3]) };
    expect(topNextAt(live, 0)).toEqual([]);
    expect(topNextAt(live, 1).map((e) => e.id)).toEqual([3, 8]);
  });
});
