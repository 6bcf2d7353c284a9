/**
 * Issue 15, defect 8: Compare aligns the two prompts' tokens as a text diff does
 * (app/analysis/align.ts), instead of pairing them by position. Checked against an independent
 * brute-force LCS (the textbook O(N·M) table) on fresh random sequences of odd lengths; a
 * one-character edit early in a prompt gives one differing column where pairing by position gave
 * one per later token; compareScores pairs ‖Δ_t‖ along the alignment.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALIGN_DELETED, ALIGN_INSERTED, ALIGN_REPLACED, ALIGN_SAME, AlignmentTooLargeError, MAX_ALIGN_EDITS, alignTokens, type TokenAlignment } from '../../app/analysis/align';
import { compareScores } from '../../app/analysis/compare';
import { alignmentRuns } from '../../renderer/src/panels/compare-view';

/** Length of a longest common subsequence, by the full dynamic-programming table. */
function lcsLength(a: readonly number[], b: readonly number[]): number {
  const table = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      table[i]![j] = a[i - 1] === b[j - 1] ? table[i - 1]![j - 1]! + 1 : Math.max(table[i - 1]![j]!, table[i]![j - 1]!);
    }
  }
  return table[a.length]![b.length]!;
}

/** Everything an alignment of a and b must be, whatever LCS it found. */
function expectValid(al: TokenAlignment, a: readonly number[], b: readonly number[]): void {
  const T = al.kind.length;
  expect(al.a.length).toBe(T);
  expect(al.b.length).toBe(T);
  // Every token of each side exactly once, in order.
  expect([...al.a].filter((i) => i >= 0)).toEqual(a.map((_, i) => i));
  expect([...al.b].filter((i) => i >= 0)).toEqual(b.map((_, i) => i));
  const counts = { same: 0, replaced: 0, inserted: 0, deleted: 0 };
  let gapDeleted = false;
  let gapInserted = false;
  for (let t = 0; t < T; t++) {
    const ia = al.a[t]!;
    const ib = al.b[t]!;
    switch (al.kind[t]) {
      case ALIGN_SAME:
        expect(a[ia]).toBe(b[ib]);
        counts.same++;
        gapDeleted = gapInserted = false;
        break;
      case ALIGN_REPLACED:
        expect(ia >= 0 && ib >= 0 && a[ia] !== b[ib]).toBe(true);
        counts.replaced++;
        break;
      case ALIGN_INSERTED:
        expect(ia).toBe(-1);
        expect(ib).toBeGreaterThanOrEqual(0);
        counts.inserted++;
        gapInserted = true;
        break;
      case ALIGN_DELETED:
        expect(ib).toBe(-1);
        expect(ia).toBeGreaterThanOrEqual(0);
        counts.deleted++;
        gapDeleted = true;
        break;
      default:
        throw new Error(`column ${t}: kind ${al.kind[t]}`);
    }
    // A gap's deletions and insertions are paired as replaced: never both left over in one gap.
    expect(gapDeleted && gapInserted, `column ${t}`).toBe(false);
  }
  expect(al.counts).toEqual(counts);
}

describe('alignTokens', () => {
  it('property: a longest common subsequence (as long as the brute-force one), every token once, in order', () => {
    const seq = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 41 }).filter((s) => s.length % 2 === 1 || s.length === 0);
    fc.assert(
      fc.property(seq, seq, (a, b) => {
        const al = alignTokens(a, b);
        expectValid(al, a, b);
        expect(al.counts.same).toBe(lcsLength(a, b));
      }),
      { numRuns: 400 },
    );
  });

  it('property: B made from A by random edits; the alignment is at least as good as the edits that made it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 61 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.integer({ min: 100, max: 120 })), { maxLength: 5 }),
        (a, edits) => {
          const b = [...a];
          for (const [at, op, id] of edits) {
            const i = at % (b.length + 1);
            if (op === 'insert') b.splice(i, 0, id);
            else if (b.length > 0 && op === 'delete') b.splice(i % b.length, 1);
            else if (b.length > 0) b[i % b.length] = id;
          }
          const al = alignTokens(a, b);
          expectValid(al, a, b);
          expect(al.counts.same).toBe(lcsLength(a, b));
          expect(al.counts.same).toBeGreaterThanOrEqual(a.length - edits.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('empty sequences, equal sequences, one side empty', () => {
    expect(alignTokens([], [])).toMatchObject({ counts: { same: 0, replaced: 0, inserted: 0, deleted: 0 } });
    const same = alignTokens([4, 4, 2], [4, 4, 2]);
    expect([...same.a]).toEqual([0, 1, 2]);
    expect([...same.b]).toEqual([0, 1, 2]);
    expect(alignTokens([], [1, 2, 3]).counts).toEqual({ same: 0, replaced: 0, inserted: 3, deleted: 0 });
    expect(alignTokens([1, 2, 3], []).counts).toEqual({ same: 0, replaced: 0, inserted: 0, deleted: 3 });
  });

  it('equal lengths with only substitutions: column t pairs position t with position t', () => {
    const a = Array.from({ length: 257 }, (_, i) => i);
    const b = [...a];
    b[3] = 1000;
    b[200] = 1001;
    const al = alignTokens(a, b);
    expect([...al.a]).toEqual(a);
    expect([...al.b]).toEqual(a);
    expect(al.counts).toEqual({ same: 255, replaced: 2, inserted: 0, deleted: 0 });
  });

  it('a one-character edit early in the prompt: a few differing columns, not one per later token', () => {
    const text = 'KING RICHARD III:\nNow is the winter of our discontent\nMade glorious summer by this sun of York;\nAnd all the clouds that lour\'d upon our house\nIn the deep bosom of the ocean buried.';
    const edited = text.replace('winter', 'winnter'); // one byte inserted at position 33 of 170
    const bytes = (s: string) => [...new TextEncoder().encode(s)];
    const a = bytes(text);
    const b = bytes(edited);
    // By position, every byte after the edit differs (the defect: "ids differ at 143 positions").
    const byPosition = a.filter((id, t) => id !== b[t]).length;
    expect(byPosition).toBeGreaterThan(100);
    const al = alignTokens(a, b);
    expect(al.counts).toEqual({ same: a.length, replaced: 0, inserted: 1, deleted: 0 });
    // Word tokens (a toy BPE: one id per distinct word): "winter" → "winnter" is one replaced token.
    const vocab = new Map<string, number>();
    const words = (s: string) => s.split(/(?=\s)/).map((w) => vocab.get(w) ?? (vocab.set(w, vocab.size), vocab.size - 1));
    const wa = words(text);
    const wb = words(edited);
    expect(alignTokens(wa, wb).counts).toEqual({ same: wa.length - 1, replaced: 1, inserted: 0, deleted: 0 });
    // Deleting a character that splits a word into two tokens: one replaced and one inserted.
    const split = words(text.replace('discontent', 'discon tent'));
    expect(alignTokens(wa, split).counts).toEqual({ same: wa.length - 1, replaced: 1, inserted: 1, deleted: 0 });
  });

  it(`refuses sequences more than ${MAX_ALIGN_EDITS} edits apart with a clear error, quickly`, () => {
    const n = MAX_ALIGN_EDITS / 2 + 1;
    const a = Array.from({ length: n }, (_, i) => i);
    const b = Array.from({ length: n }, (_, i) => i + n);
    const started = performance.now();
    expect(() => alignTokens(a, b)).toThrow(AlignmentTooLargeError);
    expect(() => alignTokens(a, b)).toThrow(`the two token sequences differ by more than ${MAX_ALIGN_EDITS} inserted and deleted tokens`);
    expect(performance.now() - started).toBeLessThan(10_000);
    // Just inside the limit: aligned (all replaced).
    const inside = alignTokens(a.slice(1), b.slice(1));
    expect(inside.counts).toEqual({ same: 0, replaced: n - 1, inserted: 0, deleted: 0 });
  });
});

describe('compareScores along the alignment', () => {
  const f32 = (values: number[]) => Float32Array.from(values);

  it('pairs scores of aligned tokens; inserted and deleted columns have one side, no difference', () => {
    // A: 10 11 12 13; B: 10 77 11 12 (77 inserted after 10, 13 deleted at the end).
    const a = { ids: [10, 11, 12, 13], layers: [0], deltaNorm: [f32([1, 2, 3, 4])] };
    const b = { ids: [10, 77, 11, 12], layers: [0], deltaNorm: [f32([1.5, 9, 2.5, 2])] };
    const cmp = compareScores(a, b);
    expect(cmp.tokens).toBe(5);
    expect([...cmp.alignment.a]).toEqual([0, -1, 1, 2, 3]);
    expect([...cmp.alignment.b]).toEqual([0, 1, 2, 3, -1]);
    expect([...cmp.alignment.kind]).toEqual([ALIGN_SAME, ALIGN_INSERTED, ALIGN_SAME, ALIGN_SAME, ALIGN_DELETED]);
    expect(cmp.edited).toEqual([1, 4]);
    expect(cmp.paired).toBe(3);
    expect([...cmp.a[0]!]).toEqual([1, NaN, 2, 3, 4]);
    expect([...cmp.b[0]!]).toEqual([1.5, 9, 2.5, 2, NaN]);
    expect([...cmp.diff[0]!]).toEqual([0.5, NaN, 0.5, -1, NaN]);
    // Over the 3 paired columns: A 1, 2, 3; B 1.5, 2.5, 2; B − A 0.5, 0.5, −1.
    expect(cmp.summaries[0]).toEqual({ layer: 0, meanA: 2, meanB: 2, meanDiff: 0, maxAbsDiff: 1, maxAt: 3 });
    // By position this pair differed at 3 of 4 positions; aligned, only the insertion and the deletion.
    expect(cmp.edited).toHaveLength(2);
  });

  it('a replaced token is compared with the token it replaces', () => {
    const a = { ids: [5, 6, 7], layers: [2], deltaNorm: [f32([1, 1, 1])] };
    const b = { ids: [5, 8, 7], layers: [2], deltaNorm: [f32([1, 4, 1])] };
    const cmp = compareScores(a, b);
    expect([...cmp.alignment.kind]).toEqual([ALIGN_SAME, ALIGN_REPLACED, ALIGN_SAME]);
    expect([...cmp.diff[0]!]).toEqual([0, 3, 0]);
    expect(cmp.summaries[0]).toMatchObject({ maxAbsDiff: 3, maxAt: 1 });
  });
});

describe('alignmentRuns (the compare panel folds long same stretches)', () => {
  it('shows each differing column with 3 same columns around it and folds the rest', () => {
    const kind = new Uint8Array(40); // all same …
    kind[10] = ALIGN_REPLACED;
    kind[11] = ALIGN_INSERTED;
    kind[30] = ALIGN_DELETED;
    expect(alignmentRuns(kind)).toEqual([
      { kind: 'folded', from: 0, to: 7 },
      { kind: 'columns', from: 7, to: 15 },
      { kind: 'folded', from: 15, to: 27 },
      { kind: 'columns', from: 27, to: 34 },
      { kind: 'folded', from: 34, to: 40 },
    ]);
    expect(alignmentRuns(new Uint8Array(5))).toEqual([{ kind: 'folded', from: 0, to: 5 }]);
    expect(alignmentRuns(new Uint8Array(0))).toEqual([]);
  });

  it('never folds a single column, and the runs cover every column once, in order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 60 }), fc.integer({ min: 0, max: 4 }), (kinds, context) => {
        const runs = alignmentRuns(kinds, context);
        let at = 0;
        for (const run of runs) {
          expect(run.from).toBe(at);
          expect(run.to).toBeGreaterThan(run.from);
          if (run.kind === 'folded') {
            expect(run.to - run.from).toBeGreaterThanOrEqual(2);
            for (let t = run.from; t < run.to; t++) expect(kinds[t]).toBe(ALIGN_SAME);
          }
          at = run.to;
        }
        expect(at).toBe(kinds.length);
      }),
    );
  });
});
