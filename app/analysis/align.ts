/**
 * Aligns two token sequences the way a text diff aligns two texts: a longest common subsequence
 * of the ids (Myers' O((N+M)·D) greedy algorithm, after the common start and end are taken off),
 * so that a one-character edit early in a prompt shifts no later token out of its pair.
 *
 * The result is a list of columns, each one of:
 * - same: a token of A and a token of B with equal ids (the common subsequence);
 * - replaced: a token of A and a token of B with different ids, in the same gap between two same
 *   columns (a gap's deletions and insertions are paired in order, as a word diff shows a changed
 *   word; what is left over is deleted or inserted);
 * - deleted: a token of A only; inserted: a token of B only.
 * Every token of A and of B is in exactly one column, in order. With equal lengths and only
 * substitutions, column t pairs position t of A with position t of B.
 */

export const ALIGN_SAME = 0;
export const ALIGN_REPLACED = 1;
export const ALIGN_INSERTED = 2;
export const ALIGN_DELETED = 3;
export type AlignKind = 'same' | 'replaced' | 'inserted' | 'deleted';
export const ALIGN_KINDS: readonly AlignKind[] = ['same', 'replaced', 'inserted', 'deleted'];

/** Most tokens in one sequence. */
export const MAX_ALIGN_TOKENS = 1 << 20;
/**
 * Most insertions + deletions (D) between the sequences after their common start and end. The
 * search keeps D² integers for the way back (3000: 36 MB) and takes O((N + M)·D) steps.
 */
export const MAX_ALIGN_EDITS = 3000;

export interface TokenAlignment {
  /** Per column: the index in A, or −1 (inserted). */
  a: Int32Array;
  /** Per column: the index in B, or −1 (deleted). */
  b: Int32Array;
  /** Per column: ALIGN_SAME, ALIGN_REPLACED, ALIGN_INSERTED or ALIGN_DELETED. */
  kind: Uint8Array;
  /** Columns of each kind (same = the length of the longest common subsequence). */
  counts: Record<AlignKind, number>;
}

export class AlignmentTooLargeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'AlignmentTooLargeError';
  }
}

/**
 * The shortest edit script between a[lo..] and b[lo..] (ends exclusive `na`, `nb`) as a list of
 * ops appended to `out`: 0 same (a then b index), 2 inserted (b index), 3 deleted (a index).
 */
function myers(a: readonly number[], b: readonly number[], a0: number, n: number, b0: number, m: number, out: number[][]): void {
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  /** trace[d]: v[−(d−1) .. d−1] as it was after round d − 1 (what the way back from round d reads). */
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max; d++) {
    if (d > MAX_ALIGN_EDITS) {
      throw new AlignmentTooLargeError(`the two token sequences differ by more than ${MAX_ALIGN_EDITS} inserted and deleted tokens (besides their common start and end); align sequences that share most of their tokens`);
    }
    trace.push(v.slice(offset - d + 1, offset + d));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number)) ? (v[offset + k + 1] as number) : (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[a0 + x] === b[b0 + y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    if (found >= 0) break;
  }
  // The way back, from (n, m) to (0, 0), collecting ops in reverse.
  const ops: number[][] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d] as Int32Array; // index k ↦ prev[k + d − 1]
    const at = (k: number) => prev[k + d - 1] as number;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    const midX = down ? prevX : prevX + 1;
    const midY = down ? prevY + 1 : prevY;
    while (x > midX && y > midY) {
      x--;
      y--;
      ops.push([ALIGN_SAME, a0 + x, b0 + y]);
    }
    if (down) ops.push([ALIGN_INSERTED, -1, b0 + prevY]);
    else ops.push([ALIGN_DELETED, a0 + prevX, -1]);
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    ops.push([ALIGN_SAME, a0 + x, b0 + y]);
  }
  for (let i = ops.length - 1; i >= 0; i--) out.push(ops[i] as number[]);
}

/** Aligns token sequences `a` and `b` (see the module comment). */
export function alignTokens(a: readonly number[], b: readonly number[]): TokenAlignment {
  for (const [name, s] of [['A', a], ['B', b]] as const) {
    if (s.length > MAX_ALIGN_TOKENS) throw new AlignmentTooLargeError(`sequence ${name} has ${s.length} tokens; at most ${MAX_ALIGN_TOKENS} are aligned`);
  }
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const ops: number[][] = [];
  for (let i = 0; i < start; i++) ops.push([ALIGN_SAME, i, i]);
  myers(a, b, start, a.length - start - end, start, b.length - start - end, ops);
  for (let i = end; i > 0; i--) ops.push([ALIGN_SAME, a.length - i, b.length - i]);

  // Pair each gap's deletions and insertions in order (replaced); the rest stay as they are.
  const columns = { a: [] as number[], b: [] as number[], kind: [] as number[] };
  const counts: Record<AlignKind, number> = { same: 0, replaced: 0, inserted: 0, deleted: 0 };
  const push = (ia: number, ib: number, kind: number) => {
    columns.a.push(ia);
    columns.b.push(ib);
    columns.kind.push(kind);
    counts[ALIGN_KINDS[kind] as AlignKind]++;
  };
  let dels: number[] = [];
  let inss: number[] = [];
  const flush = () => {
    const pairs = Math.min(dels.length, inss.length);
    for (let i = 0; i < pairs; i++) push(dels[i] as number, inss[i] as number, ALIGN_REPLACED);
    for (let i = pairs; i < dels.length; i++) push(dels[i] as number, -1, ALIGN_DELETED);
    for (let i = pairs; i < inss.length; i++) push(-1, inss[i] as number, ALIGN_INSERTED);
    dels = [];
    inss = [];
  };
  for (const [kind, ia, ib] of ops as [number, number, number][]) {
    if (kind === ALIGN_DELETED) dels.push(ia);
    else if (kind === ALIGN_INSERTED) inss.push(ib);
    else {
      flush();
      push(ia, ib, ALIGN_SAME);
    }
  }
  flush();
  return { a: Int32Array.from(columns.a), b: Int32Array.from(columns.b), kind: Uint8Array.from(columns.kind), counts };
}
