/**
 * A Hugging Face Hub client on an injected `fetch`: model info, the file tree with sizes and LFS
 * hashes, search, and the requests the downloads make. The endpoint follows the HF_ENDPOINT
 * convention (default https://huggingface.co). Redirects are followed by hand (`redirect:
 * 'manual'`) so that the token goes only to the endpoint's own host — never to the CDN a `resolve`
 * redirects to; in a browser (`redirects: 'follow'`) the browser follows them and drops the
 * Authorization header on a cross-origin redirect itself (Fetch standard).
 */
import { ARCHITECTURE_NAMES, type ArchitectureName } from '../arch/registry.js';
import { HubError, PAUSE } from './errors.js';
import { retryAfterMs, sleep, type HubFetch, type HubResponse, type HubSignal } from './http.js';
import { filePath, repoPath } from './repo-ref.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** The endpoint named by HF_ENDPOINT (without a trailing slash), else the public Hub. */
export function hubEndpoint(env: Record<string, string | undefined>): string {
  const raw = env.HF_ENDPOINT?.trim();
  if (!raw) return DEFAULT_ENDPOINT;
  return checkEndpoint(raw);
}

/** An http(s) URL without a trailing slash, or a bad-input error naming it. */
export function checkEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HubError('bad-input', `The Hub endpoint "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new HubError('bad-input', `The Hub endpoint "${raw}" is not an http(s) URL`);
  return raw.replace(/\/+$/, '');
}

export type GatedState = false | 'auto' | 'manual';

export interface HubModelInfo {
  repo: string;
  /** The commit the revision points at. */
  commit: string;
  gated: GatedState;
  private: boolean;
  license: string | null;
  tags: string[];
  /** config.json's model_type as the Hub read it, when it did. */
  modelType: string | null;
  downloads: number | null;
  likes: number | null;
}

export interface HubTreeEntry {
  path: string;
  size: number;
  /** The git blob id (what the Hub's ETag is for a file not in LFS). */
  oid: string;
  /** The LFS object's sha256, for files stored in LFS. */
  sha256?: string;
}

export interface HubSearchHit {
  repo: string;
  /** What the studio would run it as: a registered architecture, or 'gguf' for a GGUF repo of a Mamba model. */
  kind: ArchitectureName | 'gguf';
  downloads: number | null;
  likes: number | null;
  gated: GatedState;
}

/** What the first (Hub) response of a resolve said about the file. */
export interface HubFileHead {
  size: number | null;
  etag: string | null;
  commit: string | null;
}

export interface HubClientOptions {
  fetch: HubFetch;
  endpoint?: string;
  token?: string | null;
  redirects?: 'manual' | 'follow';
  /** Retries of a 429 or a 5xx answer (default 3). */
  maxRetries?: number;
  /** Longest Retry-After waited out (default 60 s); a longer one is an error at once. */
  maxRetryWaitMs?: number;
  /** First back-off after a 5xx answer without Retry-After (default 1 s, doubling). */
  retryDelayMs?: number;
}

const MAX_REDIRECTS = 5;
const MAX_TREE_PAGES = 100;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The error an aborted signal stands for: paused (partial files kept) or cancelled. */
export function abortError(signal: HubSignal | undefined, what: string): HubError {
  return signal?.reason === PAUSE ? new HubError('paused', `${what}: paused`) : new HubError('cancelled', `${what}: cancelled`);
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function gatedState(value: unknown): GatedState {
  if (value === 'auto' || value === 'manual') return value;
  return value === true ? 'manual' : false;
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The license of a model: its card's `license` (or `license_name` for "other"), else a `license:` tag. */
export function licenseOf(info: Record<string, unknown>): string | null {
  const card = record(info.cardData);
  const license = Array.isArray(card.license) ? card.license.join(', ') : card.license;
  if (typeof license === 'string' && license) {
    return license === 'other' && typeof card.license_name === 'string' ? card.license_name : license;
  }
  const tags = Array.isArray(info.tags) ? info.tags : [];
  const tag = tags.find((t): t is string => typeof t === 'string' && t.startsWith('license:'));
  return tag ? tag.slice('license:'.length) : null;
}

/** Which runnable kind a search hit or model info is, or null when the studio does not run it. */
export function studioKind(repo: string, tags: readonly string[], modelType: string | null): ArchitectureName | 'gguf' | null {
  const names: readonly string[] = ARCHITECTURE_NAMES;
  const type = modelType?.toLowerCase() ?? null;
  if (type !== null && names.includes(type)) return type as ArchitectureName;
  const tagged = ARCHITECTURE_NAMES.find((n) => tags.includes(n));
  if (tagged && type === null) return tagged;
  if (tags.includes('gguf') && (/mamba/i.test(repo) || tags.some((t) => /mamba/i.test(t)))) return 'gguf';
  return null;
}

export class HubClient {
  readonly endpoint: string;
  private readonly host: string;
  private readonly opts: Required<Omit<HubClientOptions, 'endpoint' | 'token'>>;
  private readonly token: string | null;

  constructor(options: HubClientOptions) {
    this.endpoint = checkEndpoint(options.endpoint ?? DEFAULT_ENDPOINT);
    this.host = new URL(this.endpoint).host;
    this.token = options.token?.trim() || null;
    this.opts = {
      fetch: options.fetch,
      redirects: options.redirects ?? 'manual',
      maxRetries: options.maxRetries ?? 3,
      maxRetryWaitMs: options.maxRetryWaitMs ?? 60_000,
      retryDelayMs: options.retryDelayMs ?? 1000,
    };
  }

  get hasToken(): boolean {
    return this.token !== null;
  }

  /** Does a request to this URL carry the token? Only on the endpoint's own host and scheme. */
  sendsTokenTo(url: string): boolean {
    const u = new URL(url);
    return this.token !== null && u.host === this.host && `${u.protocol}//${u.host}` === `${new URL(this.endpoint).protocol}//${this.host}`;
  }

  private headers(url: string, extra: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { ...extra };
    if (this.sendsTokenTo(url) || (this.opts.redirects === 'follow' && this.token !== null && new URL(url).host === this.host)) {
      headers.Authorization = `Bearer ${this.token}`;
    }
    return headers;
  }

  /**
   * One request: 3xx followed by hand (the token only to the endpoint's host), 429 and 5xx waited
   * out and retried a bounded number of times, 401/403/404 turned into errors naming `what`.
   * Returns the last response (2xx, or 416 for a range past the end) and the first one's headers.
   */
  async request(
    url: string,
    init: { method?: 'GET' | 'HEAD'; range?: { start: number; end: number }; signal?: HubSignal; what: string; repo?: string },
  ): Promise<{ response: HubResponse; first: HubResponse; url: string }> {
    const extra: Record<string, string> = {};
    if (init.range) extra.Range = `bytes=${init.range.start}-${init.range.end}`;
    let retries = 0;
    let delay = this.opts.retryDelayMs;
    for (;;) {
      let current = url;
      let first: HubResponse | null = null;
      let response: HubResponse;
      for (let hop = 0; ; hop++) {
        response = await this.send(current, init.method ?? 'GET', this.headers(current, extra), init.signal, init.what);
        first ??= response;
        if (!REDIRECTS.has(response.status)) break;
        const location = response.headers.get('location');
        await discard(response);
        if (!location) throw new HubError('server', `${init.what}: the Hub answered a redirect without a Location`);
        if (hop >= MAX_REDIRECTS) throw new HubError('server', `${init.what}: more than ${MAX_REDIRECTS} redirects`);
        current = new URL(location, current).href;
      }
      const status = response.status;
      if (status === 429 || status >= 500) {
        const wait = retryAfterMs(response.headers.get('retry-after'), delay);
        await discard(response);
        if (retries >= this.opts.maxRetries || wait > this.opts.maxRetryWaitMs) {
          throw status === 429
            ? new HubError('rate-limited', `${init.what}: the Hub is limiting requests (HTTP 429${retries ? ` after ${retries} retries` : ''}); try again in ${Math.ceil(wait / 1000)} s`)
            : new HubError('server', `${init.what}: the server failed (HTTP ${status}${retries ? ` after ${retries} retries` : ''})`);
        }
        retries++;
        delay *= 2;
        try {
          await sleep(wait, init.signal);
        } catch {
          throw abortError(init.signal, init.what);
        }
        continue;
      }
      if (status === 401 || status === 403) {
        await discard(response);
        const repo = init.repo ? `${init.repo} is gated or private` : `${init.what} is not accessible`;
        throw new HubError(
          'gated',
          this.token === null
            ? `${repo}: a Hugging Face access token is needed (accept the model's terms on its Hub page, then add your token)`
            : `${repo}: the token was refused (HTTP ${status}); check that it may read this repo and that you accepted the model's terms`,
        );
      }
      if (status === 404) {
        await discard(response);
        throw new HubError('not-found', `${init.what} was not found on ${this.host} (HTTP 404)`);
      }
      if ((status < 200 || status >= 300) && status !== 416) {
        await discard(response);
        throw new HubError('server', `${init.what}: unexpected answer HTTP ${status}`);
      }
      return { response, first: first ?? response, url: current };
    }
  }

  private async send(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>, signal: HubSignal | undefined, what: string): Promise<HubResponse> {
    if (signal?.aborted) throw abortError(signal, what);
    try {
      return await this.opts.fetch(url, { method, headers, redirect: this.opts.redirects, ...(signal ? { signal } : {}) });
    } catch (error) {
      if (signal?.aborted) throw abortError(signal, what);
      const reason = error instanceof Error ? ((error.cause instanceof Error ? error.cause.message : '') || error.message) : String(error);
      throw new HubError('network', `${what}: cannot reach ${new URL(url).host} (${reason})`);
    }
  }

  private async json(url: string, what: string, repo?: string, signal?: HubSignal): Promise<{ value: unknown; response: HubResponse }> {
    const { response } = await this.request(url, { what, ...(repo ? { repo } : {}), ...(signal ? { signal } : {}) });
    const text = await response.text();
    try {
      return { value: JSON.parse(text) as unknown, response };
    } catch {
      throw new HubError('server', `${what}: the Hub's answer is not JSON`);
    }
  }

  async modelInfo(repo: string, revision = 'main', signal?: HubSignal): Promise<HubModelInfo> {
    const url = revision === 'main' ? `${this.endpoint}/api/models/${repoPath(repo)}` : `${this.endpoint}/api/models/${repoPath(repo)}/revision/${encodeURIComponent(revision)}`;
    const { value } = await this.json(url, `Model ${repo}${revision === 'main' ? '' : ` at ${revision}`}`, repo, signal);
    const info = record(value);
    const commit = typeof info.sha === 'string' ? info.sha : null;
    if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new HubError('server', `Model ${repo}: the Hub's answer names no commit`);
    const config = record(info.config);
    return {
      repo: typeof info.id === 'string' ? info.id : repo,
      commit,
      gated: gatedState(info.gated),
      private: info.private === true,
      license: licenseOf(info),
      tags: Array.isArray(info.tags) ? info.tags.filter((t): t is string => typeof t === 'string') : [],
      modelType: typeof config.model_type === 'string' ? config.model_type : null,
      downloads: count(info.downloads),
      likes: count(info.likes),
    };
  }

  /** Every file of the repo at `revision` (all folders), with sizes and hashes; pages followed through the Link header. */
  async tree(repo: string, revision: string, signal?: HubSignal): Promise<HubTreeEntry[]> {
    const entries: HubTreeEntry[] = [];
    let url: string | null = `${this.endpoint}/api/models/${repoPath(repo)}/tree/${encodeURIComponent(revision)}?recursive=1`;
    for (let page = 0; url; page++) {
      if (page >= MAX_TREE_PAGES) throw new HubError('server', `Files of ${repo}: more than ${MAX_TREE_PAGES} pages`);
      const { value, response }: { value: unknown; response: HubResponse } = await this.json(url, `Files of ${repo} at ${revision}`, repo, signal);
      if (!Array.isArray(value)) throw new HubError('server', `Files of ${repo}: the Hub's answer is not a list`);
      for (const item of value) {
        const e = record(item);
        if (e.type !== 'file' || typeof e.path !== 'string' || typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) continue;
        const lfs = record(e.lfs);
        const sha256 = typeof lfs.oid === 'string' && /^[0-9a-f]{64}$/.test(lfs.oid) ? lfs.oid : undefined;
        entries.push({ path: e.path, size: e.size, oid: typeof e.oid === 'string' ? e.oid : '', ...(sha256 ? { sha256 } : {}) });
      }
      const link = response.headers.get('link');
      const next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      url = next ? new URL(next, url).href : null;
    }
    return entries;
  }

  /** Model search, filtered to what the studio runs (app/arch/registry.ts names, GGUF repos of Mamba models). */
  async search(text: string, limit = 100, signal?: HubSignal): Promise<HubSearchHit[]> {
    const query = text.trim() || 'mamba';
    const params = new URLSearchParams({ search: query, limit: String(Math.min(Math.max(limit, 1), 1000)), full: 'true', config: 'true' });
    const { value } = await this.json(`${this.endpoint}/api/models?${params.toString()}`, `Search for "${query}"`, undefined, signal);
    if (!Array.isArray(value)) throw new HubError('server', `Search for "${query}": the Hub's answer is not a list`);
    const hits: HubSearchHit[] = [];
    for (const item of value) {
      const m = record(item);
      const repo = typeof m.id === 'string' ? m.id : typeof m.modelId === 'string' ? m.modelId : null;
      if (!repo) continue;
      const tags = Array.isArray(m.tags) ? m.tags.filter((t): t is string => typeof t === 'string') : [];
      const config = record(m.config);
      const kind = studioKind(repo, tags, typeof config.model_type === 'string' ? config.model_type : null);
      if (kind) hits.push({ repo, kind, downloads: count(m.downloads), likes: count(m.likes), gated: gatedState(m.gated) });
    }
    return hits;
  }

  /** The URL of a file at a revision (its `resolve` URL on the endpoint). */
  resolveUrl(repo: string, revision: string, file: string): string {
    return `${this.endpoint}/${repoPath(repo)}/resolve/${encodeURIComponent(revision)}/${filePath(file)}`;
  }

  /**
   * HEAD of a file's resolve URL (manual redirects only: a browser hides the Hub's own headers):
   * its size (X-Linked-Size for LFS files, else Content-Length), ETag (X-Linked-Etag first) and
   * commit (X-Repo-Commit), and the URL the bytes come from.
   */
  async head(repo: string, revision: string, file: string, signal?: HubSignal): Promise<HubFileHead & { url: string }> {
    const { first, response, url } = await this.request(this.resolveUrl(repo, revision, file), {
      method: 'HEAD',
      what: `${file} of ${repo}`,
      repo,
      ...(signal ? { signal } : {}),
    });
    const sizeText = first.headers.get('x-linked-size') ?? response.headers.get('content-length');
    const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : null;
    const etag = (first.headers.get('x-linked-etag') ?? first.headers.get('etag'))?.replace(/^W\//, '').replace(/"/g, '') ?? null;
    return { size, etag, commit: first.headers.get('x-repo-commit'), url };
  }
}

/** Drops a response's body (so its connection can be reused). */
async function discard(response: HubResponse): Promise<void> {
  try {
    await response.body?.getReader().cancel();
  } catch {
    /* already closed */
  }
}
