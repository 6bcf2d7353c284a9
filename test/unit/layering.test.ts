/**
 * The import-direction rule and the per-environment type checks, shown on deliberate violations:
 * code that breaks the layering (between app/, main/ and renderer/, or the order of the layers
 * inside app/) must fail lint, and code that uses another environment's API must fail its
 * tsconfig's type check. The cycle checker is shown on small trees built in a temporary folder,
 * then run on the real app/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ESLint } from 'eslint';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { APP_LAYERS, appLayerOf } from '../../eslint-rules/layering.js';
import { appFiles, findImportCycles } from '../../tooling/import-cycles.js';

const root = path.resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root });

async function layeringErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'local/layering').map((m) => m.message);
}

describe('lint: imports flow one way', () => {
  it.each([
    ['renderer/src/x.ts', "import { Library } from '../../main/library';\nexport const x = Library;", /renderer\/ must not import from main\//],
    ['main/x.ts', "import { App } from '../renderer/src/components/App';\nexport const x = App;", /main\/ must not import from renderer\//],
    ['app/x.ts', "import { useStudio } from '../renderer/src/store';\nexport const x = useStudio;", /app\/ must not import from renderer\//],
    ['app/gpu/x.ts', "import { Library } from '../../main/library';\nexport const x = Library;", /app\/ must not import from main\//],
    ['app/kernels/x.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;", /Node built-in "node:fs"/],
    ['renderer/src/x.ts', "import fs from 'fs';\nexport const x = fs;", /Node built-in "fs"/],
    ['app/x.ts', "export const x = () => import('../main/menu');", /app\/ must not import from main\//],
  ])('%s: forbidden import fails lint', async (file, code, message) => {
    const errors = await layeringErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  });

  it.each([
    ['renderer/src/x.ts', "import { invokeNames } from '../../app/contract';\nexport const x = invokeNames;"],
    ['main/x.ts', "import { invokeNames } from '../app/contract.js';\nimport fs from 'node:fs';\nexport const x = [invokeNames, fs];"],
    ['app/node/x.ts', "import fs from 'node:fs';\nexport const x = fs;"],
    ['app/kernels/x.ts', "import code from '../../shaders/residual_rmsnorm.wgsl?raw';\nexport const x = code;"],
  ])('%s: allowed import passes', async (file, code) => {
    expect(await layeringErrors(file, code)).toEqual([]);
  });
});

describe('lint: app/ layers are ordered', () => {
  const order = `app/ layers are ordered ${APP_LAYERS.map((l) => l.name).join(' → ')}`;

  it('every app/ file lies in one layer, named by its folder or file', () => {
    const layer = (p: string) => APP_LAYERS[appLayerOf(p)]?.name;
    expect([layer('app/random.ts'), layer('app/env.d.ts'), layer('app/analysis/trace.ts'), layer('app/library/bundled.ts')]).toEqual(['base', 'base', 'analysis', 'library']);
    expect([layer('app/contract'), layer('app/kernels'), layer('app/cli.js')]).toEqual(['contract', 'kernels', 'cli']);
    expect(appLayerOf('app/newfolder/x.ts')).toBe(-1);
    expect(appFiles(root).filter((f) => appLayerOf(f) < 0)).toEqual([]);
  });

  it.each([
    ['app/kernels/x.ts', "import { Session } from '../model/session';\nexport const x = Session;", 'app/kernels/x.ts (layer "kernels") must not import app/model/session (layer "model")'],
    ['app/formats/x.ts', "import { createContext } from '../gpu/context';\nexport const x = createContext;", 'app/formats/x.ts (layer "formats") must not import app/gpu/context (layer "gpu")'],
    ['app/model/x.ts', "import type { EngineRequest } from '../engine/protocol';\nexport type X = EngineRequest;", 'app/model/x.ts (layer "model") must not import app/engine/protocol (layer "engine")'],
    ['app/kernels/x.ts', "export type { EngineRequest } from '../engine/protocol.js';", 'app/kernels/x.ts (layer "kernels") must not import app/engine/protocol.js (layer "engine")'],
    ['app/model/x.ts', "export type X = import('../engine/protocol').EngineRequest;", 'app/model/x.ts (layer "model") must not import app/engine/protocol (layer "engine")'],
    ['app/gpu/x.ts', "import { invokeNames } from '../contract';\nexport const x = invokeNames;", 'app/gpu/x.ts (layer "gpu") must not import app/contract (layer "contract")'],
    ['app/csp.ts', "export const x = () => import('./model/session');", 'app/csp.ts (layer "base") must not import app/model/session (layer "model")'],
    ['app/contract.ts', "import { runModel } from './node/run-model';\nexport const x = runModel;", 'app/contract.ts (layer "contract") must not import app/node/run-model (layer "node")'],
  ])('%s: import from a higher app/ layer fails lint', async (file, code, message) => {
    const errors = await layeringErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(message);
    expect(errors[0]).toContain(order);
  });

  it.each([
    ['app/newfolder/x.ts', "import { matmul } from '../kernels/matmul';\nexport const x = matmul;", 'app/newfolder/x.ts is in no app/ layer: extend APP_LAYERS in eslint-rules/layering.js'],
    ['app/model/x.ts', "import { y } from '../newfolder/y';\nexport const x = y;", 'app/newfolder/y is in no app/ layer: extend APP_LAYERS in eslint-rules/layering.js'],
  ])('%s: a file outside every app/ layer fails lint, naming the list', async (file, code, message) => {
    const errors = await layeringErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(message);
  });

  it.each([
    ['app/model/x.ts', "import { matmul } from '../kernels/matmul';\nexport const x = matmul;"],
    ['app/arch/x.ts', "import { Session } from '../model/session.js';\nimport type { ModelConfig } from '../formats/config';\nexport const x: [typeof Session, ModelConfig?] = [Session];"],
    ['app/engine/x.ts', "import { memory } from '../analysis/memory';\nimport { buildModel } from '../arch/build';\nexport const x = [memory, buildModel];"],
    ['app/kernels/x.ts', "import { matmul } from './matmul';\nimport { dispatch } from './dispatch.js';\nexport const x = [matmul, dispatch];"],
    ['app/library/x.ts', "import type { ModelEntry } from '../contract';\nimport { inspectModel } from '../arch/inspect';\nexport const x: [typeof inspectModel, ModelEntry?] = [inspectModel];"],
    ['app/formats/x.ts', "import code from '../../shaders/matmul.wgsl?raw';\nimport { randomSeed } from '../random';\nexport const x = [code, randomSeed];"],
    ['app/node/x.ts', "import { invokeNames } from '../contract';\nimport { Engine } from '../engine/engine';\nexport const x = [invokeNames, Engine];"],
    ['app/cli.ts', "import fs from 'node:fs';\nimport { runModel } from './node/run-model';\nexport const x = [fs, runModel];"],
  ])('%s: import from the same or a lower app/ layer passes', async (file, code) => {
    expect(await layeringErrors(file, code)).toEqual([]);
  });
});

describe('import cycles', () => {
  /** Writes a tree of files (path → text) into a new temporary folder, runs the checker on it, and removes it. */
  function cyclesOf(files: Record<string, string>) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'import-cycles-'));
    try {
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      }
      const { files: fileCycles, folders } = findImportCycles(dir);
      return { files: fileCycles.map((c) => c.text), folders: folders.map((c) => c.text), imports: folders.map((c) => c.imports) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('finds a file cycle, through a type-only import and a .js specifier', () => {
    const found = cyclesOf({
      'app/kernels/a.ts': "import { b } from './b.js';\nexport const a = b + 1;",
      'app/kernels/b.ts': "import type { C } from './c';\nexport const b = 1 as C;",
      'app/kernels/c.ts': "import type { a } from './a';\nexport type C = typeof a;",
    });
    expect(found.files).toEqual(['app/kernels/a.ts → app/kernels/b.ts → app/kernels/c.ts → app/kernels/a.ts']);
    expect(found.folders).toEqual([]);
  });

  it('finds a folder cycle that is no file cycle, with the imports that make it', () => {
    const found = cyclesOf({
      'app/model/a.ts': "import { x } from '../kernels/x';\nexport const a = x;",
      'app/model/b.ts': 'export const b = 1;',
      'app/kernels/x.ts': 'export const x = 1;',
      'app/kernels/y.ts': "export const y = () => import('../model/b.js');",
    });
    expect(found.files).toEqual([]);
    expect(found.folders).toEqual(['app/kernels → app/model → app/kernels']);
    expect(found.imports).toEqual([['app/kernels/y.ts → app/model/b.ts', 'app/model/a.ts → app/kernels/x.ts']]);
  });

  it('counts a file directly in app/ as its own folder, and resolves a folder import to its index.ts', () => {
    const found = cyclesOf({
      'app/random.ts': "export * from './formats';",
      'app/formats/index.ts': "export { f } from './f';",
      'app/formats/f.ts': "import type { R } from '../random.js';\nexport const f = 1;\nexport type F = R;",
    });
    expect(found.files).toEqual(['app/formats/f.ts → app/random.ts → app/formats/index.ts → app/formats/f.ts']);
    expect(found.folders).toEqual(['app/formats → app/random.ts → app/formats']);
  });

  it('reports none for an acyclic tree, leaving out shaders and packages', () => {
    const found = cyclesOf({
      'app/random.ts': "import { z } from 'zod';\nexport const r = z;",
      'app/kernels/x.ts': "import code from '../../shaders/x.wgsl?raw';\nimport { r } from '../random';\nexport const x = [code, r];",
      'app/model/m.ts': "import { x } from '../kernels/x.js';\nimport type { r } from '../random';\nexport const m = () => import('../kernels/x');\nexport type M = typeof x | typeof r;",
      'app/engine/e.ts': "export * from '../model/m';\nexport { x } from '../kernels/x';",
      'shaders/x.wgsl': '',
    });
    expect(found).toEqual({ files: [], folders: [], imports: [] });
  });

  it('the real app/ has no import cycles', () => {
    const { files, folders } = findImportCycles(root);
    const found = { files: files.map((c) => c.text), folders: folders.map((c) => `${c.text} (${c.imports.join('; ')})`) };
    expect(found).toEqual({ files: [], folders: [] });
  });
});

/** Type-checks one virtual file under a project's tsconfig; returns the diagnostics' messages. */
function typeErrors(tsconfig: string, file: string, code: string): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, tsconfig), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error(`cannot read ${tsconfig}`);
  const { configFilePath: _unused, ...base } = parsed.options;
  const options: ts.CompilerOptions = { ...base, composite: false, noEmit: true, declaration: false, emitDeclarationOnly: false };
  const fileName = path.join(root, file);
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === fileName ? ts.createSourceFile(name, code, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const ambient = parsed.fileNames.filter((f) => f.endsWith('.d.ts'));
  const program = ts.createProgram([fileName, ...ambient], options, host);
  const source = program.getSourceFile(fileName);
  return ts.getPreEmitDiagnostics(program, source).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

// Each case builds a TypeScript program over a whole tsconfig: 3–6 s on a 2-core machine, more under
// load (CI once measured 5.6 s, past the unit project's 5 s default).
describe('typecheck: each environment sees only its own APIs', { timeout: 60_000 }, () => {
  it('app/ has neither DOM nor Node', () => {
    expect(typeErrors('tsconfig.app.json', 'app/probe.ts', 'export const a = document.title;').join()).toMatch(/Cannot find name 'document'/);
    expect(typeErrors('tsconfig.app.json', 'app/probe.ts', 'export const a = process.pid;').join()).toMatch(/Cannot find name 'process'/);
    expect(typeErrors('tsconfig.app.json', 'app/probe.ts', 'export const a = new TextDecoder().decode(new Uint8Array(1)); export const b = GPUBufferUsage.STORAGE;')).toEqual([]);
  });
  it('main/ has Node but no DOM', () => {
    expect(typeErrors('tsconfig.main.json', 'main/probe.ts', 'export const a = document.title;').join()).toMatch(/Cannot find name 'document'/);
    expect(typeErrors('tsconfig.main.json', 'main/probe.ts', 'export const a = process.pid;')).toEqual([]);
  });
  it('renderer/ has the DOM but no Node', () => {
    expect(typeErrors('tsconfig.renderer.json', 'renderer/src/probe.ts', 'export const a = process.pid;').join()).toMatch(/Cannot find name 'process'/);
    expect(typeErrors('tsconfig.renderer.json', 'renderer/src/probe.ts', 'export const a = document.title;')).toEqual([]);
  });
});
