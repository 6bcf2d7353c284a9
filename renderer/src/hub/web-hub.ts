/**
 * Web mode's side of the contract's hub* methods: the same core as the desktop (app/hub) on the
 * browser's fetch (redirects followed by the browser, which drops the Authorization header on a
 * cross-origin redirect), downloads kept in memory (memory-fs.ts), and a finished model opened
 * like dropped files. The endpoint is https://huggingface.co unless the page's URL names another
 * (`?hub-endpoint=…`, for a mirror or the tests). A token is kept for this page only, never stored.
 */
import type { HubJob, HubRepoInfo, HubSearchResult, HubSettings, ModelEntry, StudioApi } from '../../../app/contract';
import { HubClient, DEFAULT_ENDPOINT, checkEndpoint } from '../../../app/hub/client';
import { snapshotFolder } from '../../../app/hub/download';
import type { HubFetch } from '../../../app/hub/http';
import { HubJobs } from '../../../app/hub/jobs';
import { planChoice } from '../../../app/hub/plan';
import { lookupRepo, type HubRepoView } from '../../../app/hub/pull';
import { parseHubRef } from '../../../app/hub/repo-ref';
import { memoryDownloadFs } from './memory-fs';

type HubMethods = Pick<
  StudioApi,
  'hubLookup' | 'hubSearch' | 'hubPlan' | 'hubDownload' | 'hubJobs' | 'hubPause' | 'hubResume' | 'hubCancel' | 'hubSettings' | 'hubSetToken' | 'hubChooseModelsFolder'
>;

const WEB_TOKEN_NOTE = 'in the browser a token is kept for this page only and never stored; the desktop app stores it encrypted';

export function webEndpoint(search: string = globalThis.location?.search ?? ''): string {
  const named = new URLSearchParams(search).get('hub-endpoint');
  return named ? checkEndpoint(named) : DEFAULT_ENDPOINT;
}

function randomId(): string {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function createWebHub(deps: { openFiles(files: File[]): Promise<ModelEntry>; emit(job: HubJob): void; endpoint?: string; fetch?: HubFetch }): HubMethods {
  const endpoint = deps.endpoint ?? webEndpoint();
  const fetchFn = deps.fetch ?? ((url, init) => fetch(url, init as RequestInit) as unknown as ReturnType<HubFetch>);
  let token: string | null = null;
  const fs = memoryDownloadFs(async () => {
    const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
    return estimate?.quota !== undefined && estimate.usage !== undefined ? estimate.quota - estimate.usage : null;
  });
  const client = () => new HubClient({ fetch: fetchFn, endpoint, token, redirects: 'follow' });
  const views = new Map<string, HubRepoView>();
  const viewOf = async (repo: string, revision: string) => {
    const view = views.get(`${repo}@${revision}`) ?? (await lookupRepo(client(), { repo, revision }));
    views.set(`${repo}@${revision}`, view);
    return view;
  };
  const jobs = new HubJobs({
    client,
    fs: () => fs,
    dir: () => 'memory',
    emit: deps.emit,
    // Browsers hide the Hub's own headers behind a followed redirect: sizes and hashes come from the file list.
    options: { head: false },
    randomId,
    finished: async (stored) => {
      // A choice's files are the model's own (a checkpoint with its side files, or one GGUF's parts).
      const folder = snapshotFolder(stored.job.repo, stored.job.commit);
      const files = stored.files.map((f) => {
        const bytes = fs.bytes(`${folder}/${f.path}`);
        if (!bytes) throw new Error(`${f.path} is missing after its download`);
        return new File([bytes as Uint8Array<ArrayBuffer>], f.path.split('/').pop() ?? f.path);
      });
      const id = (await deps.openFiles(files)).id;
      // The library holds them now (as Files): the download's copies are let go.
      for (const f of stored.files) await fs.remove(`${folder}/${f.path}`);
      return id;
    },
  });
  const settings = (): HubSettings => ({ modelsDir: 'browser memory', endpoint, hasToken: token !== null, tokenStorage: { available: false, reason: WEB_TOKEN_NOTE } });
  return {
    hubLookup: async (input): Promise<HubRepoInfo> => {
      const view = await lookupRepo(client(), parseHubRef(input, endpoint));
      views.set(`${view.repo}@${view.revision}`, view);
      return { ...view, choices: view.choices.map((c) => ({ ...c, files: c.files.map((f) => ({ path: f.path, size: f.size })) })) };
    },
    hubSearch: async (query): Promise<HubSearchResult[]> => client().search(query, 100),
    hubPlan: async (repo, revision, choiceId, adapter) => {
      const view = await viewOf(repo, revision);
      const choice = view.choices.find((c) => c.id === choiceId);
      if (!choice) throw new Error(`${repo} has no choice "${choiceId}"`);
      return planChoice(client(), view, choice, adapter);
    },
    hubDownload: async (repo, revision, choiceId) => {
      const view = await viewOf(repo, revision);
      const choice = view.choices.find((c) => c.id === choiceId);
      if (!choice) throw new Error(`${repo} has no choice "${choiceId}"`);
      return jobs.start(view, choice);
    },
    hubJobs: async () => jobs.list(),
    hubPause: (id) => jobs.pause(id),
    hubResume: async (id) => jobs.resume(id),
    hubCancel: (id) => jobs.cancel(id),
    hubSettings: async () => settings(),
    hubSetToken: async (value) => {
      token = value;
      return settings();
    },
    hubChooseModelsFolder: async () => settings(),
  };
}
