/**
 * One error type for everything the Hub client and the downloads refuse, with a kind the UI and
 * the CLI can act on (a token for 'gated', free space for 'disk-space') and a message that names
 * the repository or file and says what to do.
 */
export type HubErrorKind =
  | 'bad-input'
  | 'not-found'
  | 'gated'
  | 'rate-limited'
  | 'network'
  | 'server'
  | 'integrity'
  | 'disk-space'
  | 'paused'
  | 'cancelled';

export class HubError extends Error {
  constructor(
    readonly kind: HubErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

/** The abort reason that pauses a download (its partial files are kept); any other reason cancels it. */
export const PAUSE = 'pause';

/** Decimal units, as the Hub shows sizes: "1.2 GB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0)} ${units[unit]}`;
}
