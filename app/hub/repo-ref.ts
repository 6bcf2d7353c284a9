/**
 * What the user pastes: a repo id (`state-spaces/mamba-130m-hf`) or a Hub URL
 * (`https://huggingface.co/<owner>/<name>[/tree|blob|resolve/<rev>/<file>]`), read into the repo,
 * the revision and, for a blob/resolve URL, the file.
 */
import { HubError } from './errors.js';

export interface HubRef {
  repo: string;
  revision: string;
  /** A file the URL pointed at (blob/resolve URLs). */
  file?: string;
}

export const DEFAULT_REVISION = 'main';
/** Repo names on the Hub: letters, digits, `-`, `_`, `.`; not starting or ending with `-`/`.`, no `--`/`..`, ≤ 96 characters. */
const NAME = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![-.])$/;
const HUB_HOSTS = ['huggingface.co', 'hf.co', 'www.huggingface.co'];

/** Is this `owner/name` (or a legacy bare `name`) a valid model repo id? */
export function isRepoId(id: string): boolean {
  const parts = id.split('/');
  return parts.length >= 1 && parts.length <= 2 && parts.every((p) => NAME.test(p));
}

function decodeSegment(segment: string, input: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HubError('bad-input', `"${input}" is not a Hub URL: a part of its path is not valid URL encoding`);
  }
}

/**
 * Reads a repo id or Hub URL. `endpoint`'s host is accepted besides huggingface.co and hf.co (a
 * mirror set by HF_ENDPOINT). Datasets and Spaces are refused: the studio opens models.
 */
export function parseHubRef(input: string, endpoint?: string): HubRef {
  const text = input.trim();
  if (!text) throw new HubError('bad-input', 'Enter a Hub repo id (owner/name) or a Hub URL');
  if (text.length > 2048) throw new HubError('bad-input', 'That is too long for a Hub repo id or URL');
  let path: string;
  const looksLikeUrl = /^[a-z]+:\/\//i.test(text) || /^(www\.)?(huggingface\.co|hf\.co)\//i.test(text);
  if (looksLikeUrl) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
    } catch {
      throw new HubError('bad-input', `"${text}" is not a valid URL`);
    }
    const hosts = [...HUB_HOSTS];
    if (endpoint) {
      try {
        hosts.push(new URL(endpoint).host.toLowerCase());
      } catch {
        /* an invalid endpoint is reported where it is used */
      }
    }
    if (!hosts.includes(url.host.toLowerCase())) {
      throw new HubError('bad-input', `"${text}" is not a Hugging Face Hub URL (its host is ${url.host})`);
    }
    path = url.pathname;
  } else {
    path = text;
  }
  const segments = path.split('/').filter((s) => s.length > 0);
  if (segments[0] === 'datasets' || segments[0] === 'spaces') {
    throw new HubError('bad-input', `"${text}" is a ${segments[0] === 'datasets' ? 'dataset' : 'Space'}, not a model repo`);
  }
  if (segments[0] === 'models' && looksLikeUrl) segments.shift();
  const owner = segments[0];
  const name = segments[1];
  if (!owner || !name) {
    throw new HubError('bad-input', `"${text}" names no model repo: expected owner/name (e.g. state-spaces/mamba-130m-hf)`);
  }
  const repo = `${owner}/${name}`;
  if (!isRepoId(repo)) throw new HubError('bad-input', `"${repo}" is not a valid Hub repo id`);
  const rest = segments.slice(2);
  if (rest.length === 0) return { repo, revision: DEFAULT_REVISION };
  if (!looksLikeUrl) throw new HubError('bad-input', `"${text}" is not a repo id: expected owner/name`);
  const [kind, revision, ...file] = rest;
  if ((kind !== 'tree' && kind !== 'blob' && kind !== 'resolve') || !revision) {
    throw new HubError('bad-input', `"${text}": expected …/${repo}/tree/<revision>, …/blob/<revision>/<file> or …/resolve/<revision>/<file>`);
  }
  const rev = decodeSegment(revision, text);
  const filePath = file.map((f) => decodeSegment(f, text)).join('/');
  if (filePath.split('/').some((s) => s === '..' || s === '.')) throw new HubError('bad-input', `"${text}": the file path must not contain . or ..`);
  if ((kind === 'blob' || kind === 'resolve') && filePath) return { repo, revision: rev, file: filePath };
  return { repo, revision: rev };
}

/** A repo's path in a URL: each part encoded, the `/` between them kept. */
export function repoPath(repo: string): string {
  return repo.split('/').map(encodeURIComponent).join('/');
}

/** A file path inside a repo, each segment encoded. */
export function filePath(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}
