// Types for layering.js, for the tests that read its list of app/ layers.
import type { Rule } from 'eslint';

/** One app/ layer: its name, and the paths it covers (a folder ends in `/`; anything else is one file). */
export interface AppLayer {
  name: string;
  paths: string[];
}

/** The layers of app/, lowest first. */
export declare const APP_LAYERS: AppLayer[];

/** The index in APP_LAYERS of the layer covering a path relative to the repository root, or -1. */
export declare function appLayerOf(relPath: string): number;

declare const rule: Rule.RuleModule;
export default rule;
