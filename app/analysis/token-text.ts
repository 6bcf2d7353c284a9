/** The text of one token for display: bytes readably for byte models, control characters as symbols. */
import { hexByte, READABLE_CONTROLS, readableByte } from '../tokenizer/readable.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** The id itself when there is no tokenizer. */
export function readableToken(tokenizer: Tokenizer | null, id: number): string {
  if (!tokenizer) return String(id);
  if (tokenizer.kind === 'bytes') return readableByte(id);
  const text = tokenizer.decode([id]);
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\n\t\r]/g, (c) => READABLE_CONTROLS[c] ?? c).replace(/[\u0000-\u001f\u007f]/g, (c) => hexByte(c.charCodeAt(0)));
}
