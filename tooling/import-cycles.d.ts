// Types for import-cycles.js, for the tests.

/** A cycle: its nodes with the first repeated at the end, and the same as `a.ts → b.ts → a.ts`. */
export interface ImportCycle {
  path: string[];
  text: string;
}

/** A folder-level cycle, with one file import per step that makes it (`app/a/x.ts → app/b/y.ts`). */
export interface FolderCycle extends ImportCycle {
  imports: string[];
}

/** Every .ts and .tsx file under root/app/, relative to root with `/` separators, sorted. */
export declare function appFiles(root: string): string[];

/** The file-level and folder-level import cycles among `files` (default: appFiles(root)). */
export declare function findImportCycles(root: string, files?: string[]): { files: ImportCycle[]; folders: FolderCycle[] };
