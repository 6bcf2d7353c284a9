/**
 * Config files as JSON: `parseConfigJson` (Python's json output, Infinity and NaN included) and
 * typed key readers. What a config means is each architecture's business (app/arch/<name>/
 * config.ts builds the canonical MambaConfig from it; app/arch/registry.ts detects which one).
 */
import { clip, ModelFileError, preview } from './errors.js';

/** Nesting deeper than this is refused before parsing (real configs nest 3 or 4 levels). */
export const MAX_CONFIG_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const BARE_WORDS = /-?Infinity|NaN/y;

/**
 * JSON.parse that also accepts bare `Infinity`, `-Infinity` and `NaN` (Python's json writes them)
 * and the `{"__float__": "Infinity"}` form. Arrays and objects nested deeper than
 * MAX_CONFIG_DEPTH are a ModelFileError (found in the same pass that finds the bare words, before
 * anything recursive runs).
 */
export function parseConfigJson(file: string, text: string): Record<string, unknown> {
  const pieces: string[] = [];
  let copied = 0;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Skip the string (escapes included); an unterminated one is JSON.parse's to report.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
      continue;
    }
    if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_CONFIG_DEPTH) throw new ModelFileError(file, `JSON nested deeper than ${MAX_CONFIG_DEPTH} levels (at character ${i})`);
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x49 || c === 0x4e || c === 0x2d) {
      BARE_WORDS.lastIndex = i;
      const word = BARE_WORDS.exec(text);
      if (word) {
        pieces.push(text.slice(copied, i), `{"__float__":"${word[0]}"}`);
        i += word[0].length - 1;
        copied = i + 1;
      }
    }
  }
  pieces.push(text.slice(copied));
  let value: unknown;
  try {
    value = JSON.parse(pieces.join(''));
  } catch (error) {
    throw new ModelFileError(file, `not valid JSON (${clip(error instanceof Error ? error.message : String(error), 200)})`);
  }
  // Recursion bounded by MAX_CONFIG_DEPTH (checked above).
  const revive = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(revive);
    if (x && typeof x === 'object') {
      const o = x as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === '__float__' && typeof o.__float__ === 'string') return Number(o.__float__);
      return Object.fromEntries(keys.map((k) => [k, revive(o[k])]));
    }
    return x;
  };
  const result = revive(value);
  if (typeof result !== 'object' || result === null || Array.isArray(result)) throw new ModelFileError(file, 'expected a JSON object');
  return result as Record<string, unknown>;
}

export type Raw = Record<string, unknown>;

/** Typed readers of a config's keys: a wrong type or a missing required key is a ModelFileError naming the file and the key. */
export type ConfigReader = ReturnType<typeof configReader>;

export function configReader(file: string, raw: Raw) {
  const int = (key: string, fallback?: number, from: Raw = raw, path = key): number => {
    const v = from[key];
    if (v === undefined || v === null) {
      if (fallback === undefined) throw new ModelFileError(file, `missing required key "${path}"`);
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ModelFileError(file, `"${path}" must be a non-negative integer, got ${preview(v)}`);
    return v;
  };
  const num = (key: string, fallback: number, from: Raw = raw, path = key): number => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new ModelFileError(file, `"${path}" must be a number, got ${preview(v)}`);
    return v;
  };
  const bool = (key: string, fallback: boolean, from: Raw = raw, path = key): boolean => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelFileError(file, `"${path}" must be true or false, got ${preview(v)}`);
    return v;
  };
  return { int, num, bool };
}

