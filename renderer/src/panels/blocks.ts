/**
 * A hybrid's blocks in the panels (issue 22): how a block is named wherever a layer is chosen or
 * listed ("layer 3" for an SSM block, as for a pure Mamba; "layer 1 · attention", "layer 2 · MLP"),
 * and the memory of one sequence against its context length: the attention blocks' KV caches
 * grow by a fixed number of bytes per token, the SSM blocks' state does not.
 */
import type { BlockKind, LoadedModelInfo } from '../../../app/engine/protocol';

export type Blocks = LoadedModelInfo['blocks'];

const KIND_TEXT: Record<BlockKind, string> = { ssm: 'SSM', attention: 'attention', mlp: 'MLP' };

/** Engine block `l` as the panels name it: "layer 3", "layer 1 · attention", "layer 2 · MLP" (no blocks known: "layer l"). */
export function blockLabel(blocks: Blocks | undefined, l: number): string {
  const kind = blocks?.[l]?.kind;
  return kind && kind !== 'ssm' ? `layer ${l} · ${KIND_TEXT[kind]}` : `layer ${l}`;
}

/** Whether the model has blocks other than SSM ones (a hybrid). */
export function isHybrid(blocks: Blocks | undefined): boolean {
  return blocks !== undefined && blocks.some((b) => b.kind !== 'ssm');
}

/** How many blocks of each kind: "3 SSM, 2 attention, 2 MLP" (kinds in that order, absent ones left out). */
export function blockCounts(blocks: Blocks): string {
  return (['ssm', 'attention', 'mlp'] as const)
    .map((k) => [k, blocks.filter((b) => b.kind === k).length] as const)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${KIND_TEXT[k]}`)
    .join(', ');
}

/** A byte unit that shows `max` bytes as a number ≥ 1 (B, KiB, MiB, GiB). */
export function byteUnit(max: number): { name: string; bytes: number } {
  const units = [
    { name: 'B', bytes: 1 },
    { name: 'KiB', bytes: 2 ** 10 },
    { name: 'MiB', bytes: 2 ** 20 },
    { name: 'GiB', bytes: 2 ** 30 },
  ];
  return units.reduce((best, u) => (max >= u.bytes ? u : best), units[0] as { name: string; bytes: number });
}

export interface MemoryGrowth {
  /** Context lengths (tokens) of the points: 0, step, 2·step, …, the capacity (evenly spaced; step need not be whole). */
  tokens: number[];
  step: number;
  /** The KV caches' bytes in use at each length (fixedBytes + bytesPerToken · tokens), in `unit`. */
  kv: Float64Array;
  /** The SSM state's bytes (the same at every length), in `unit`. */
  ssm: Float64Array;
  unit: { name: string; bytes: number };
}

/**
 * The memory of one sequence at `points` + 1 context lengths from 0 to the KV caches' capacity:
 * the KV caches' bytes in use and the constant SSM state, both in one byte unit.
 */
export function memoryGrowth(kvCache: NonNullable<LoadedModelInfo['kvCache']>, ssmStateBytes: number, points = 64): MemoryGrowth {
  const { capacity, bytesPerToken, fixedBytes } = kvCache;
  if (!(Number.isInteger(capacity) && capacity >= 1 && bytesPerToken >= 0 && fixedBytes >= 0 && ssmStateBytes >= 0)) {
    throw new RangeError(`memoryGrowth: a KV cache of ${capacity} tokens at ${bytesPerToken} bytes per token (+ ${fixedBytes}) and an SSM state of ${ssmStateBytes} bytes is not a memory size`);
  }
  const count = Math.max(1, Math.min(Math.floor(points), capacity));
  const step = capacity / count;
  const tokens = Array.from({ length: count + 1 }, (_, k) => (k === count ? capacity : k * step));
  const unit = byteUnit(Math.max(fixedBytes + bytesPerToken * capacity, ssmStateBytes));
  return {
    tokens,
    step,
    kv: Float64Array.from(tokens, (t) => (fixedBytes + bytesPerToken * t) / unit.bytes),
    ssm: Float64Array.from(tokens, () => ssmStateBytes / unit.bytes),
    unit,
  };
}
