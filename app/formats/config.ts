/**
 * Config files as JSON: `parseConfigJson` (Python's json output, Infinity and NaN included) and
 * typed key readers. What a config means is each architecture's business (app/arch/<name>/
 * config.ts builds the canonical MambaConfig from it; app/arch/registry.ts detects which one).
 */
import { ModelFileError } from './errors.js';

/**
 * JSON.parse that also accepts bare `Infinity`, `-Infinity` and `NaN` (Python's json writes them)
 * and the `{"__float__": "Infinity"}` form.
 */
export function parseConfigJson(file: string, text: string): Record<string, unknown> {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    const word = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (word) {
      out += `{"__float__":"${word[1]}"}`;
      i += (word[1] as string).length - 1;
      continue;
    }
    out += c;
  }
  let value: unknown;
  try {
    value = JSON.parse(out);
  } catch (error) {
    throw new ModelFileError(file, `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
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
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ModelFileError(file, `"${path}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, fallback: number, from: Raw = raw, path = key): number => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new ModelFileError(file, `"${path}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, fallback: boolean, from: Raw = raw, path = key): boolean => {
    const v = from[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ModelFileError(file, `"${path}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  return { int, num, bool };
}

