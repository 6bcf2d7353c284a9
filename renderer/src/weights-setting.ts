/**
 * The "GPU weights" setting of the load panel (issue 17): how the big matrices are kept on the GPU
 * ('auto': the checkpoint's own F16 / BF16 / GGUF block format; 'f32'; 'f16'), remembered in
 * localStorage so that it is what the user picked last time. Anything unreadable there is 'auto'.
 */
import { WEIGHT_CHOICES, type WeightChoice } from '../../app/model/memory';

export const WEIGHTS_STORAGE_KEY = 'mamba-studio.gpu-weights';

export function loadWeightChoice(storage: Pick<Storage, 'getItem'> | null | undefined): WeightChoice {
  try {
    const raw = storage?.getItem(WEIGHTS_STORAGE_KEY);
    return (WEIGHT_CHOICES as readonly string[]).includes(raw ?? '') ? (raw as WeightChoice) : 'auto';
  } catch {
    return 'auto';
  }
}

/** Stores the choice; false when there is no storage or it refuses (full, private mode). */
export function saveWeightChoice(storage: Pick<Storage, 'setItem'> | null | undefined, choice: WeightChoice): boolean {
  if (!storage) return false;
  try {
    storage.setItem(WEIGHTS_STORAGE_KEY, choice);
    return true;
  } catch {
    return false;
  }
}
