// The globals that app/ may use: those that exist alike in a browser worker and in Node 20.
// app/ is compiled with neither DOM nor Node types, so anything else is a type error here.
declare global {
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  }
  var console: Console;

  interface TextDecodeOptions { stream?: boolean }
  interface TextDecoderOptions { fatal?: boolean; ignoreBOM?: boolean }
  class TextDecoder {
    constructor(label?: string, options?: TextDecoderOptions);
    decode(input?: ArrayBufferView | ArrayBuffer, options?: TextDecodeOptions): string;
  }
  class TextEncoder {
    encode(input?: string): Uint8Array;
  }
  interface Performance { now(): number }
  var performance: Performance;
  function setTimeout(handler: () => void, timeout?: number): unknown;
  function clearTimeout(id: unknown): void;
  function queueMicrotask(callback: () => void): void;
  function structuredClone<T>(value: T): T;

  class URLSearchParams {
    constructor(init?: Record<string, string> | string);
    append(name: string, value: string): void;
    get(name: string): string | null;
    toString(): string;
  }
  class URL {
    constructor(url: string, base?: string);
    readonly href: string;
    readonly protocol: string;
    readonly host: string;
    readonly hostname: string;
    readonly port: string;
    readonly pathname: string;
    readonly search: string;
    readonly searchParams: URLSearchParams;
    toString(): string;
  }

  class AbortSignal {
    readonly aborted: boolean;
    readonly reason: unknown;
    throwIfAborted(): void;
  }
  class AbortController {
    readonly signal: AbortSignal;
    abort(reason?: unknown): void;
  }
  // @webgpu/types refers to these; in app/ they are opaque.
  interface EventTarget {
    addEventListener(type: string, listener: (event: unknown) => void): void;
    removeEventListener(type: string, listener: (event: unknown) => void): void;
  }
  interface Event { readonly type: string }
  interface EventInit { bubbles?: boolean }
  interface EventListenerOptions { capture?: boolean }
  interface AddEventListenerOptions extends EventListenerOptions { once?: boolean }
  type EventListenerOrEventListenerObject = ((event: Event) => void) | { handleEvent(event: Event): void };
  interface HTMLImageElement { readonly width: number }
  interface ImageData { readonly width: number }
  interface ImageBitmap { readonly width: number }
  interface HTMLVideoElement { readonly width: number }
  interface VideoFrame { readonly codedWidth: number }
  interface DOMException { readonly name: string }
}
export {};
