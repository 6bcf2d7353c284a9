/** Longest problem text kept: a backstop, so no message about a file can grow with the file. */
export const MAX_PROBLEM_CHARS = 4096;

/** A problem with a model file: which file, and what is wrong with it, in words a user can act on. */
export class ModelFileError extends Error {
  readonly problem: string;
  constructor(
    readonly file: string,
    problem: string,
  ) {
    const kept = problem.length > MAX_PROBLEM_CHARS ? `${problem.slice(0, MAX_PROBLEM_CHARS)}… (${problem.length - MAX_PROBLEM_CHARS} more characters)` : problem;
    super(`${file}: ${kept}`);
    this.problem = kept;
    this.name = 'ModelFileError';
  }
}

/**
 * A value from a file as it appears in a message: as JSON.stringify writes it (NaN and ±Infinity
 * by name), but cut at `max` characters (so a huge array or string cannot make a huge message)
 * and never deeper than the characters allow (so a deeply nested one cannot overflow the stack,
 * as JSON.stringify would).
 */
export function preview(value: unknown, max = 80): string {
  let out = '';
  const put = (text: string): boolean => {
    out += text;
    return out.length <= max;
  };
  // Each level writes at least one character before going deeper, so depth ≤ max + 1.
  const walk = (x: unknown): boolean => {
    if (typeof x === 'string') return put(JSON.stringify(x.length > max ? x.slice(0, max + 1) : x));
    if (typeof x === 'number') return put(Number.isNaN(x) ? 'NaN' : Number.isFinite(x) ? String(x) : x > 0 ? 'Infinity' : '-Infinity');
    if (typeof x === 'bigint') return put(`${x}`);
    if (x === null || typeof x === 'boolean') return put(String(x));
    if (x === undefined) return put('undefined');
    if (Array.isArray(x)) {
      if (!put('[')) return false;
      for (let i = 0; i < x.length; i++) {
        if ((i > 0 && !put(',')) || !walk(x[i])) return false;
      }
      return put(']');
    }
    if (typeof x === 'object') {
      if (!put('{')) return false;
      let first = true;
      for (const k in x) {
        if (!Object.hasOwn(x, k)) continue;
        if ((!first && !put(',')) || !put(`${JSON.stringify(k.length > max ? k.slice(0, max + 1) : k)}:`) || !walk((x as Record<string, unknown>)[k])) return false;
        first = false;
      }
      return put('}');
    }
    return put(typeof x);
  };
  return walk(value) ? out : `${out.slice(0, max)}…`;
}

/** A text from a file cut to `max` characters for a message. */
export function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
