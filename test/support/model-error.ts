import { ModelFileError } from '../../app/formats/errors';

/** Runs fn and returns the ModelFileError it throws (failing if it throws anything else, or nothing). */
export async function modelError(fn: () => Promise<unknown> | unknown): Promise<ModelFileError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ModelFileError) return error;
    throw new Error(`expected a ModelFileError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected a ModelFileError, got none');
}
