/**
 * The small slice of `fetch` the Hub client uses, typed here because app/ is compiled without DOM
 * or Node types. The browser's fetch, Node's (undici) and Electron's `net.fetch` all fit it.
 */
export interface HubHeaders {
  get(name: string): string | null;
}

export interface HubBodyReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
  releaseLock(): void;
}

export interface HubResponse {
  readonly status: number;
  readonly headers: HubHeaders;
  readonly body: { getReader(): HubBodyReader } | null;
  text(): Promise<string>;
}

/** An AbortSignal as far as the downloads need one. */
export interface HubSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface HubRequestInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** 'manual': redirects come back as 3xx with their Location (Node, Electron main); 'follow': the browser follows them. */
  redirect?: 'manual' | 'follow';
  signal?: HubSignal;
}

export type HubFetch = (url: string, init: HubRequestInit) => Promise<HubResponse>;

/** Waits `ms` milliseconds, or rejects with the signal's reason when it is aborted first. */
export function sleep(ms: number, signal?: HubSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After (seconds, or an HTTP date) in milliseconds; `fallback` when absent or unreadable. */
export function retryAfterMs(value: string | null, fallback: number, now: number = Date.now()): number {
  if (value === null) return fallback;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? fallback : Math.max(0, date - now);
}
