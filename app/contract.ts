/**
 * The typed contract between the Electron main process and the renderer (and its web-mode twin).
 *
 * One map, `Invokes`: method name → argument tuple → result. From it come
 *  - the preload's `window.studio` (one function per method, `StudioApi`),
 *  - main's handler table (`Handlers`: every method must have a handler, or it does not compile),
 *  - the web-mode implementation (which also satisfies `StudioApi`),
 *  - `invokeArgs`, the runtime validators main runs on every call's arguments.
 * Events (main → renderer) are typed the same way by `Events`.
 */
import type { ArchitectureName } from './arch/registry.js';
import type { ModelFormat } from './model/inspection.js';
import type { MemoryPlan } from './model/memory-plan.js';
import { v, ValidationError, type Validator } from './validate.js';

export type { ArchitectureName, ModelFormat };

/** A model the studio can show in its sidebar. */
export interface ModelEntry {
  id: string;
  name: string;
  source: 'bundled' | 'user';
  format: ModelFormat;
  architecture: ArchitectureName | 'unknown';
  /** Files of the model, relative to `baseUrl`. */
  files: string[];
  /** Where the renderer fetches the files from: `model://models/<id>` on desktop, an HTTP path in web mode. */
  baseUrl: string;
  sizeBytes: number;
  description?: string;
  /** Absolute path on disk (desktop only; never set in web mode). */
  path?: string;
  /** Parameter count, once the model's headers were read. */
  parameters?: number;
  /** The canonical config (app/model/config.ts), JSON-safe (Infinity as the string "Infinity"). */
  config?: Record<string, unknown>;
  /** ISO time the user last opened it (user models). */
  lastOpened?: string;
  warnings?: string[];
}

export interface AppInfo {
  name: string;
  version: string;
  /** `desktop`: Electron; `web`: the same renderer served to a browser. */
  shell: 'desktop' | 'web';
  versions: { electron?: string; chrome?: string; node?: string };
  platform: string;
}

/** A file of a Hub repo the studio would download. */
export interface HubFileView {
  path: string;
  size: number;
}

/** One way to get a model from a Hub repo (app/hub/choices.ts): a checkpoint, or one GGUF quant. */
export interface HubChoiceView {
  id: string;
  kind: 'safetensors' | 'mistral' | 'pytorch' | 'gguf';
  label: string;
  files: HubFileView[];
  bytes: number;
  weightBytes: number;
}

/** A Hub repo as the "Get models" view shows it (app/hub/pull.ts HubRepoView). */
export interface HubRepoInfo {
  repo: string;
  revision: string;
  commit: string;
  license: string | null;
  gated: false | 'auto' | 'manual';
  modelType: string | null;
  choices: HubChoiceView[];
  file?: string;
}

export interface HubSearchResult {
  repo: string;
  kind: ArchitectureName | 'gguf';
  downloads: number | null;
  likes: number | null;
  gated: false | 'auto' | 'manual';
}

export interface HubFileProgress {
  path: string;
  bytes: number;
  total: number;
  state: 'waiting' | 'downloading' | 'verifying' | 'done';
  speed: number;
  etaSeconds: number | null;
}

/** A download of one choice: its state and progress (the `hubJob` event carries it on every change). */
export interface HubJob {
  id: string;
  repo: string;
  revision: string;
  commit: string;
  choiceId: string;
  label: string;
  state: 'downloading' | 'paused' | 'done' | 'failed' | 'cancelled';
  bytes: number;
  total: number;
  speed: number;
  etaSeconds: number | null;
  files: HubFileProgress[];
  error?: string;
  /** The library entry once done (the renderer opens it). */
  modelId?: string;
}

export interface HubSettings {
  /** Where downloads go (hub cache layout under it). */
  modelsDir: string;
  endpoint: string;
  hasToken: boolean;
  /** Can a token be stored (encrypted by the OS through Electron's safeStorage)? If not, why. */
  tokenStorage: { available: true } | { available: false; reason: string };
}

/** The adapter as a memory plan needs it (app/gpu/adapter.ts AdapterSummary's names and limits). */
export interface PlanAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
}

export interface Invokes {
  getAppInfo: { args: []; result: AppInfo };
  listModels: { args: []; result: ModelEntry[] };
  /** Shows the platform's open dialog; resolves to the opened entry, or null when cancelled. */
  openModelDialog: { args: []; result: ModelEntry | null };
  /**
   * Opens models the user chose outside the page: each argument a path grant that main handed
   * out for a path it got itself (command line, "open with": the `openPaths` event; a drop: the
   * preload's `studioFiles.grantForFile`). Never a path: see main/path-grants.ts.
   */
  openModelPaths: { args: [grants: string[]]; result: ModelEntry[] };
  removeModel: { args: [id: string]; result: ModelEntry[] };
  /** A session or trace file the OS handed over (the `openSessionFiles` event's grant): its name and bytes, for the renderer to check and show. */
  readSessionFile: { args: [grant: string]; result: { name: string; bytes: Uint8Array } };
  /** Messages from start-up (a library index recovered from its backup, a bundled model that failed to load…). */
  getNotices: { args: []; result: string[] };
  /** A repo id or Hub URL: the repo's license, gated state and the choices the studio can open. */
  hubLookup: { args: [input: string]; result: HubRepoInfo };
  /** Model search on the Hub, filtered to what the studio runs. */
  hubSearch: { args: [query: string]; result: HubSearchResult[] };
  /** The memory plan of a choice for this GPU, from its headers read over the Hub (nothing downloaded). */
  hubPlan: { args: [repo: string, revision: string, choiceId: string, adapter: PlanAdapter | null]; result: MemoryPlan };
  /** Starts downloading a choice of a repo (looked up again by main: the renderer names it, never its files). */
  hubDownload: { args: [repo: string, revision: string, choiceId: string]; result: HubJob };
  /** Downloads of this and earlier runs (paused and failed ones can be resumed). */
  hubJobs: { args: []; result: HubJob[] };
  hubPause: { args: [jobId: string]; result: HubJob };
  hubResume: { args: [jobId: string]; result: HubJob };
  /** Stops a download and deletes its partial files. */
  hubCancel: { args: [jobId: string]; result: HubJob };
  hubSettings: { args: []; result: HubSettings };
  /** Stores a Hub token encrypted by the OS (null forgets it); refused when encryption is unavailable. */
  hubSetToken: { args: [token: string | null]; result: HubSettings };
  /** Shows a folder dialog for the models folder; the settings as they are after it. */
  hubChooseModelsFolder: { args: []; result: HubSettings };
}

export type InvokeName = keyof Invokes;
export type InvokeArgs<K extends InvokeName> = Invokes[K]['args'];
export type InvokeResult<K extends InvokeName> = Invokes[K]['result'];

/** A path grant: 32 random bytes in hex (main/path-grants.ts). */
export const PATH_GRANT = /^[0-9a-f]{64}$/;
const pathGrant: Validator<string> = (value, where) => {
  const grant = v.string({ maxLength: 64 })(value, where);
  if (!PATH_GRANT.test(grant)) throw new ValidationError(where, 'expected a path grant (models are opened by grant, never by path)');
  return grant;
};

const repoId: Validator<string> = (value, where) => {
  const id = v.string({ maxLength: 200, nonEmpty: true })(value, where);
  if (!/^(?!.*\.\.)(?![-.])[\w.-]{1,96}(?<![-.])(\/(?![-.])[\w.-]{1,96}(?<![-.]))?$/.test(id)) throw new ValidationError(where, 'expected a Hub repo id (owner/name)');
  return id;
};
const jobId: Validator<string> = (value, where) => {
  const id = v.string({ maxLength: 64 })(value, where);
  if (!/^[0-9a-f]{32}$/.test(id)) throw new ValidationError(where, 'expected a download id');
  return id;
};
const adapterText = v.string({ maxLength: 256 });
const limit = v.number({ integer: true, min: 0 });
const adapterShape = v.object({
  vendor: adapterText,
  architecture: adapterText,
  device: adapterText,
  description: adapterText,
  limits: v.object({ maxStorageBufferBindingSize: limit, maxBufferSize: limit }),
});
const planAdapter: Validator<PlanAdapter | null> = (value, where) => (value === null ? null : adapterShape(value, where));
/** A Hub token: printable ASCII without spaces, as the Hub issues them. */
const hubToken: Validator<string | null> = (value, where) => {
  if (value === null) return null;
  const token = v.string({ maxLength: 512, nonEmpty: true })(value, where);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new ValidationError(where, 'expected a Hub access token (printable characters, no spaces)');
  return token;
};

/**
 * The preload's own channel, outside the contract (the page cannot call it): a path that
 * `webUtils.getPathForFile` gave for a dropped or picked File, answered with a path grant.
 */
export const DROP_GRANT_CHANNEL = 'studio:drop:grant';

/** Runtime validators of every method's arguments; a method without one does not compile. */
export const invokeArgs: { [K in InvokeName]: Validator<InvokeArgs<K>> } = {
  getAppInfo: v.tuple(),
  listModels: v.tuple(),
  openModelDialog: v.tuple(),
  openModelPaths: v.tuple(v.array(pathGrant, { maxLength: 64 })),
  removeModel: v.tuple(v.string({ maxLength: 256, nonEmpty: true })),
  readSessionFile: v.tuple(pathGrant),
  getNotices: v.tuple(),
  hubLookup: v.tuple(v.string({ maxLength: 2048, nonEmpty: true })),
  hubSearch: v.tuple(v.string({ maxLength: 200 })),
  hubDownload: v.tuple(repoId, v.string({ maxLength: 256, nonEmpty: true }), v.string({ maxLength: 1024, nonEmpty: true })),
  hubPlan: v.tuple(repoId, v.string({ maxLength: 256, nonEmpty: true }), v.string({ maxLength: 1024, nonEmpty: true }), planAdapter),
  hubJobs: v.tuple(),
  hubPause: v.tuple(jobId),
  hubResume: v.tuple(jobId),
  hubCancel: v.tuple(jobId),
  hubSettings: v.tuple(),
  hubSetToken: v.tuple(hubToken),
  hubChooseModelsFolder: v.tuple(),
};

export const invokeNames = Object.keys(invokeArgs) as InvokeName[];

export type MenuCommand = 'open-model' | 'about' | 'toggle-sidebar' | 'open-session' | 'save-session';

export interface Events {
  modelsChanged: ModelEntry[];
  menuCommand: MenuCommand;
  /** Grants for paths handed over by the OS (second instance, "open with", command line), for `openModelPaths`. */
  openPaths: string[];
  /** Grants for session or trace files handed over by the OS, for `readSessionFile`. */
  openSessionFiles: string[];
  /** A download's state and progress (throttled while it runs). */
  hubJob: HubJob;
}
export type EventName = keyof Events;
export const eventNames: readonly EventName[] = ['modelsChanged', 'menuCommand', 'openPaths', 'openSessionFiles', 'hubJob'];

/** IPC channel names: one per method and per event, under a common prefix. */
export const invokeChannel = (name: InvokeName): string => `studio:invoke:${name}`;
export const eventChannel = (name: EventName): string => `studio:event:${name}`;

/** What the renderer sees as `window.studio` (desktop) or gets from the web host. */
export type StudioApi = {
  [K in InvokeName]: (...args: InvokeArgs<K>) => Promise<InvokeResult<K>>;
} & {
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
};

/** Main's handler table: exactly one handler per method, typed from the map. */
export type Handlers<Ctx> = {
  [K in InvokeName]: (ctx: Ctx, ...args: InvokeArgs<K>) => Promise<InvokeResult<K>> | InvokeResult<K>;
};

/** Errors cross IPC as plain objects; this is their shape. */
export interface StudioErrorPayload {
  code: 'invalid-arguments' | 'forbidden' | 'not-found' | 'failed';
  message: string;
}
