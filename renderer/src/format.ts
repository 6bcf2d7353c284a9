export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 129_374_208 → "129.4 M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

/**
 * The architecture as the model facts show it: the registry name, and for a Mamba-2 with several
 * groups how many and how its gated norm runs ("mamba2, 8 groups, gated norm per group of 1024").
 * `config` is the library entry's canonical config (app/model/config.ts), when it has one.
 */
export function architectureText(architecture: string, config?: Record<string, unknown>): string {
  const groups = config?.nGroups;
  if (typeof groups !== 'number' || groups <= 1) return architecture;
  const size = config?.normGroupSize;
  const norm = typeof size !== 'number' || size <= 0 ? '' : size === config?.dInner ? ', gated norm over all of d_inner' : `, gated norm per group of ${size}`;
  return `${architecture}, ${groups} groups${norm}`;
}
