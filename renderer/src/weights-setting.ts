/**
 * The load panel's remembered settings, in localStorage so that each is what the user picked last
 * time (anything unreadable there is the default):
 *   "GPU weights" (issue 17): how the big matrices are kept on the GPU ('auto': the checkpoint's
 *   own F16 / BF16 / GGUF block format; 'f32'; 'f16'); default 'auto'.
 *   "Prefill" (issue 19): how plain prefill chunks multiply ('fp32', exact; 'int8': the int8
 *   tensor cores, app/model/int8-prefill.ts); default 'fp32'.
 */
import { PREFILL_MATMULS, type PrefillMatmul } from '../../app/model/int8-plan';
import { WEIGHT_CHOICES, type WeightChoice } from '../../app/model/memory';

export const WEIGHTS_STORAGE_KEY = 'mamba-studio.gpu-weights';
export const PREFILL_STORAGE_KEY = 'mamba-studio.prefill-matmul';

function loadChoice<T extends string>(storage: Pick<Storage, 'getItem'> | null | undefined, key: string, choices: readonly T[], fallback: T): T {
  try {
    const raw = storage?.getItem(key);
    return (choices as readonly string[]).includes(raw ?? '') ? (raw as T) : fallback;
  } catch {
    return fallback;
  }
}

/** Stores a choice; false when there is no storage or it refuses (full, private mode). */
function saveChoice(storage: Pick<Storage, 'setItem'> | null | undefined, key: string, choice: string): boolean {
  if (!storage) return false;
  try {
    storage.setItem(key, choice);
    return true;
  } catch {
    return false;
  }
}

export function loadWeightChoice(storage: Pick<Storage, 'getItem'> | null | undefined): WeightChoice {
  return loadChoice(storage, WEIGHTS_STORAGE_KEY, WEIGHT_CHOICES, 'auto');
}

export function saveWeightChoice(storage: Pick<Storage, 'setItem'> | null | undefined, choice: WeightChoice): boolean {
  return saveChoice(storage, WEIGHTS_STORAGE_KEY, choice);
}

export function loadPrefillChoice(storage: Pick<Storage, 'getItem'> | null | undefined): PrefillMatmul {
  return loadChoice(storage, PREFILL_STORAGE_KEY, PREFILL_MATMULS, 'fp32');
}

export function savePrefillChoice(storage: Pick<Storage, 'setItem'> | null | undefined, choice: PrefillMatmul): boolean {
  return saveChoice(storage, PREFILL_STORAGE_KEY, choice);
}
