/**
 * How one byte token (MambaByte ids 0..255) is shown: printable ASCII as itself, '\n' '\t' '\r'
 * as ⏎ ⇥ ␍, anything else as 0xHH. The same mapping as the engine's `readableToken` for byte
 * models (app/engine/engine.ts), so a top-k id and a prompt token read alike.
 */
export const READABLE_CONTROLS: Readonly<Record<string, string>> = { '\n': '⏎', '\t': '⇥', '\r': '␍' };

export const hexByte = (b: number) => `0x${b.toString(16).toUpperCase().padStart(2, '0')}`;

export function readableByte(id: number): string {
  const ch = String.fromCharCode(id);
  const named = READABLE_CONTROLS[ch];
  if (named) return named;
  return id >= 0x20 && id < 0x7f ? ch : hexByte(id);
}
