/**
 * The notices' rules, as pure functions over the list (the store's UI slice applies them):
 * - info notices expire after INFO_NOTICE_MS; errors stay until dismissed or their context ends;
 * - a notice may belong to a context (a model id): selecting another model drops them;
 * - the same kind and text again is one notice with a count ("×2"), moved to the end, its expiry renewed;
 * - at most MAX_NOTICES are kept (the oldest go first).
 */
export type NoticeKind = 'error' | 'info';

export interface Notice {
  id: number;
  kind: NoticeKind;
  text: string;
  /** What the notice is about (a model id), or null for the whole app. */
  context: string | null;
  /** How many times it was raised. */
  count: number;
  /** When it goes (ms, Date.now() clock), or null: until dismissed. */
  expiresAt: number | null;
}

export const INFO_NOTICE_MS = 8000;
export const MAX_NOTICES = 5;

export function addNotice(list: readonly Notice[], add: { kind: NoticeKind; text: string; context?: string | null }, now: number, id: number): Notice[] {
  const context = add.context ?? null;
  const expiresAt = add.kind === 'info' ? now + INFO_NOTICE_MS : null;
  const same = list.find((n) => n.kind === add.kind && n.text === add.text && n.context === context);
  const rest = list.filter((n) => n !== same);
  const notice: Notice = same ? { ...same, count: same.count + 1, expiresAt } : { id, kind: add.kind, text: add.text, context, count: 1, expiresAt };
  return [...rest, notice].slice(-MAX_NOTICES);
}

/** The list without the notices expired at `now` (the same array when none did). */
export function expireNotices(list: Notice[], now: number): Notice[] {
  const kept = list.filter((n) => n.expiresAt === null || n.expiresAt > now);
  return kept.length === list.length ? list : kept;
}

/** The list once `context` is the current one (a model was selected): other contexts' notices go. */
export function enterContext(list: Notice[], context: string | null): Notice[] {
  const kept = list.filter((n) => n.context === null || n.context === context);
  return kept.length === list.length ? list : kept;
}

export function dismissNotice(list: readonly Notice[], id: number): Notice[] {
  return list.filter((n) => n.id !== id);
}

/** The soonest expiry in the list, or null when nothing expires. */
export function nextExpiry(list: readonly Notice[]): number | null {
  let next: number | null = null;
  for (const n of list) if (n.expiresAt !== null && (next === null || n.expiresAt < next)) next = n.expiresAt;
  return next;
}
