/**
 * Small runtime validators for values that cross a trust boundary (IPC arguments, JSON files).
 * Each validator returns the value typed, or throws a ValidationError naming the path of the bad
 * part, so that a message can say exactly what was wrong.
 */
export class ValidationError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'ValidationError';
  }
}

export type Validator<T> = (value: unknown, path: string) => T;

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;

export const v = {
  string(opts: { maxLength?: number; nonEmpty?: boolean } = {}): Validator<string> {
    const maxLength = opts.maxLength ?? 4096;
    return (value, path) => {
      if (typeof value !== 'string') throw new ValidationError(path, `expected a string, got ${describe(value)}`);
      if (value.length > maxLength) throw new ValidationError(path, `string longer than ${maxLength} characters`);
      if (opts.nonEmpty && value.length === 0) throw new ValidationError(path, 'expected a non-empty string');
      return value;
    };
  },
  number(opts: { integer?: boolean; min?: number; max?: number } = {}): Validator<number> {
    return (value, path) => {
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new ValidationError(path, `expected a finite number, got ${describe(value)}`);
      if (opts.integer && !Number.isInteger(value)) throw new ValidationError(path, 'expected an integer');
      if (opts.min !== undefined && value < opts.min) throw new ValidationError(path, `must be ≥ ${opts.min}`);
      if (opts.max !== undefined && value > opts.max) throw new ValidationError(path, `must be ≤ ${opts.max}`);
      return value;
    };
  },
  boolean(): Validator<boolean> {
    return (value, path) => {
      if (typeof value !== 'boolean') throw new ValidationError(path, `expected a boolean, got ${describe(value)}`);
      return value;
    };
  },
  literal<const L extends string | number | boolean>(...options: L[]): Validator<L> {
    return (value, path) => {
      if (!options.includes(value as L))
        throw new ValidationError(path, `expected one of ${options.map((o) => JSON.stringify(o)).join(', ')}`);
      return value as L;
    };
  },
  array<T>(item: Validator<T>, opts: { maxLength?: number } = {}): Validator<T[]> {
    const maxLength = opts.maxLength ?? 100_000;
    return (value, path) => {
      if (!Array.isArray(value)) throw new ValidationError(path, `expected an array, got ${describe(value)}`);
      if (value.length > maxLength) throw new ValidationError(path, `array longer than ${maxLength}`);
      return value.map((x, i) => item(x, `${path}[${i}]`));
    };
  },
  object<S extends Record<string, Validator<unknown>>>(
    shape: S,
  ): Validator<{ [K in keyof S]: ReturnType<S[K]> }> {
    return (value, path) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new ValidationError(path, `expected an object, got ${describe(value)}`);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (!(key in shape)) throw new ValidationError(`${path}.${key}`, 'unexpected key');
      }
      for (const [key, check] of Object.entries(shape)) {
        out[key] = check((value as Record<string, unknown>)[key], `${path}.${key}`);
      }
      return out as { [K in keyof S]: ReturnType<S[K]> };
    };
  },
  optional<T>(inner: Validator<T>): Validator<T | undefined> {
    return (value, path) => (value === undefined ? undefined : inner(value, path));
  },
  /** Validates an argument list of exactly these validators. */
  tuple<const T extends readonly Validator<unknown>[]>(
    ...items: T
  ): Validator<{ -readonly [K in keyof T]: T[K] extends Validator<infer U> ? U : never }> {
    return (value, path) => {
      if (!Array.isArray(value)) throw new ValidationError(path, `expected an argument list, got ${describe(value)}`);
      if (value.length !== items.length)
        throw new ValidationError(path, `expected ${items.length} argument(s), got ${value.length}`);
      return items.map((check, i) => check(value[i], `${path}[${i}]`)) as {
        -readonly [K in keyof T]: T[K] extends Validator<infer U> ? U : never;
      };
    };
  },
};
