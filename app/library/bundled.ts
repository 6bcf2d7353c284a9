/**
 * What the model library records of a model. Bundled demo models: `resources/models/<name>/` with `config.json`, `model.safetensors` and
 * `studio.json` (what the UI says about the model). Pure functions over already-read JSON, so
 * main (from disk), web mode (over HTTP) and tests build the same entries.
 */
import { noTokenizerWarning, summarizeInspection, type ModelInspection } from '../arch/inspect.js';
import { architectureOf, isArchitectureName } from '../arch/registry.js';
import type { ModelEntry } from '../contract.js';
import { ModelFileError } from '../formats/errors.js';

export { ModelFileError };

export function parseJsonFile(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelFileError(file, `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelFileError(file, 'expected a JSON object');
  }
  return value as Record<string, unknown>;
}

export { architectureOf };

const str = (x: unknown): string | undefined => (typeof x === 'string' && x.trim() ? x : undefined);

export interface BundledModelFiles {
  /** Folder name under resources/models. */
  name: string;
  /** File names in the folder with their sizes in bytes. */
  files: { name: string; size: number }[];
  studio: Record<string, unknown>;
  config: Record<string, unknown>;
}

export function bundledModelEntry(model: BundledModelFiles, baseUrl: string): ModelEntry {
  const weights = model.files.find((f) => f.name.endsWith('.safetensors') || f.name.endsWith('.gguf')) ?? model.files.find((f) => f.name.endsWith('.bin'));
  if (!weights) throw new ModelFileError(`${model.name}/`, 'no .safetensors, .gguf or .bin weights file');
  const description = str(model.studio.description) ?? str(model.studio.what_to_look_at);
  return {
    id: `bundled:${model.name}`,
    name: str(model.studio.display_name) ?? str(model.studio.displayName) ?? str(model.studio.name) ?? model.name,
    source: 'bundled',
    format: weights.name.endsWith('.gguf') ? 'gguf' : weights.name.endsWith('.bin') ? 'pytorch' : 'safetensors',
    architecture: architectureOf(model.config),
    files: model.files.map((f) => f.name).sort(),
    baseUrl,
    sizeBytes: model.files.reduce((sum, f) => sum + f.size, 0),
    ...(description ? { description } : {}),
  };
}

/** What a library entry records of an inspection (desktop library, bundled scan, web mode alike). */
export type InspectedFields = Pick<ModelEntry, 'parameters' | 'config' | 'warnings' | 'architecture' | 'format'>;

export function inspectedFields(inspection: ModelInspection): InspectedFields {
  const summary = summarizeInspection(inspection);
  return {
    architecture: isArchitectureName(summary.architecture) ? summary.architecture : 'unknown',
    format: summary.format,
    parameters: summary.parameters,
    config: summary.config as unknown as Record<string, unknown>,
    warnings: summary.warnings,
  };
}

/** studio.json's token labels (`tokenizer.labels`: labels[id]), when it has a whole list of strings. */
export function studioLabels(studio: Record<string, unknown>): string[] | undefined {
  const tokenizer = studio.tokenizer;
  const labels = typeof tokenizer === 'object' && tokenizer !== null ? (tokenizer as Record<string, unknown>).labels : undefined;
  return Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === 'string') ? labels : undefined;
}

/**
 * A bundled model's warnings, given its studio.json: a model whose studio.json labels its token
 * ids (an id-only demo such as selective-copy) is meant to be used with ids, so "no tokenizer" is
 * no warning there.
 */
export function bundledWarnings(warnings: readonly string[], inspectedAs: string, studio: Record<string, unknown>): string[] {
  if (!studioLabels(studio)) return [...warnings];
  return warnings.filter((w) => w !== noTokenizerWarning(inspectedAs));
}

/**
 * The bundled models' index as a page gets it (web mode): no path of the serving machine's disk —
 * entries without `path`, and every text (warnings, descriptions) with the models folder `dir`
 * written as "resources/models".
 */
export function pageIndex(scan: { models: ModelEntry[]; warnings: string[] }, dir: string): { models: ModelEntry[]; warnings: string[] } {
  const scrub = (text: string) => scrubFolder(text, dir);
  return {
    models: scan.models.map(({ path: _path, ...m }) => JSON.parse(scrub(JSON.stringify(m))) as ModelEntry),
    warnings: scan.warnings.map(scrub),
  };
}

/** `text` with every mention of the folder `dir` (with either separator, as JSON writes it or not) as "resources/models". */
export function scrubFolder(text: string, dir: string): string {
  const trimmed = dir.replace(/[\\/]+$/, '');
  if (!trimmed) return text;
  const forms = new Set([trimmed, trimmed.replace(/\\/g, '/'), JSON.stringify(trimmed).slice(1, -1)]);
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) out = out.split(form).join('resources/models');
  return out;
}
