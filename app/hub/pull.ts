/**
 * Looking a repo up and pulling one of its choices: the steps the CLI's `pull`, the desktop's
 * download manager (main/hub.ts) and web mode share.
 */
import { studioChoices, choiceForFile, type HubChoice } from './choices.js';
import type { GatedState, HubClient, HubModelInfo } from './client.js';
import { snapshotFolder } from './download.js';
import { HubError } from './errors.js';
import type { HubSignal } from './http.js';
import type { HubRef } from './repo-ref.js';

/** A repo as the "Get models" view and `pull` see it. */
export interface HubRepoView {
  repo: string;
  revision: string;
  commit: string;
  license: string | null;
  gated: GatedState;
  modelType: string | null;
  choices: HubChoice[];
  /** The file a blob/resolve URL pointed at. */
  file?: string;
}

export async function lookupRepo(client: HubClient, ref: HubRef, signal?: HubSignal): Promise<HubRepoView> {
  const info: HubModelInfo = await client.modelInfo(ref.repo, ref.revision, signal);
  const choices = studioChoices(await client.tree(info.repo, info.commit, signal));
  return {
    repo: info.repo,
    revision: ref.revision,
    commit: info.commit,
    license: info.license,
    gated: info.gated,
    modelType: info.modelType,
    choices,
    ...(ref.file ? { file: ref.file } : {}),
  };
}

/**
 * The choice to download: the one holding `file` when given (a GGUF quant's name, or any file of
 * a checkpoint), else the repo's only or first config-based checkpoint, else its only GGUF.
 */
export function pickChoice(view: HubRepoView, file?: string): HubChoice {
  const wanted = file ?? view.file;
  if (view.choices.length === 0) {
    throw new HubError('not-found', `${view.repo} has no files the studio can open (a config.json with .safetensors or pytorch_model.bin, or a .gguf)`);
  }
  if (wanted) {
    const choice = choiceForFile(view.choices, wanted) ?? view.choices.find((c) => c.id === wanted);
    if (!choice) throw new HubError('not-found', `${view.repo} has no file "${wanted}" the studio can open; it has: ${view.choices.map((c) => c.label).join('; ')}`);
    return choice;
  }
  const checkpoint = view.choices.find((c) => c.kind !== 'gguf');
  if (checkpoint) return checkpoint;
  const ggufs = view.choices;
  if (ggufs.length === 1) return ggufs[0] as HubChoice;
  throw new HubError('bad-input', `${view.repo} has ${ggufs.length} GGUF files: choose one (${ggufs.map((c) => c.files[0]?.path).join(', ')})`);
}

/** What to open once a choice is downloaded, relative to the models folder: a GGUF's (first) file, else the snapshot folder. */
export function modelTarget(view: Pick<HubRepoView, 'repo' | 'commit'>, choice: HubChoice): string {
  const folder = snapshotFolder(view.repo, view.commit);
  return choice.kind === 'gguf' ? `${folder}/${(choice.files[0] as HubChoice['files'][number]).path}` : folder;
}
