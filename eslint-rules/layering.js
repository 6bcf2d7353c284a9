/**
 * local/layering: imports flow one way (docs/ARCHITECTURE.md, "The layers of app/").
 *   app/       → app/, shaders/ only (never main/ or renderer/); Node built-ins only in app/node/ and app/cli.ts
 *   main/      → main/, app/, shaders/ (never renderer/)
 *   renderer/  → renderer/, app/, shaders/ (never main/); no Node built-ins
 * Inside app/, the layers of APP_LAYERS are ordered: a file imports from its own layer or lower ones,
 * never from a higher one, and every app/ file must lie in one of them. Type-only imports count too.
 * Relative imports are resolved against the importing file, so `../../main/x` is caught too.
 */
import path from 'node:path';
import { builtinModules } from 'node:module';

const LAYERS = ['app', 'main', 'renderer', 'shaders'];
const ALLOWED = {
  app: new Set(['app', 'shaders']),
  main: new Set(['main', 'app', 'shaders']),
  renderer: new Set(['renderer', 'app', 'shaders']),
};
const NODE_BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * The layers of app/, lowest first: a file may import from its own layer or a lower one. A path
 * ending in `/` covers that folder; any other path is one file. Shaders lie outside app/ and may be
 * imported from any layer. This is the one copy of the order: tooling/import-cycles.js and the
 * tests read it from here.
 */
export const APP_LAYERS = [
  { name: 'base', paths: ['app/random.ts', 'app/csp.ts', 'app/validate.ts', 'app/env.d.ts'] },
  { name: 'formats', paths: ['app/formats/'] },
  { name: 'gpu', paths: ['app/gpu/'] },
  { name: 'tokenizer', paths: ['app/tokenizer/'] },
  { name: 'kernels', paths: ['app/kernels/'] },
  { name: 'model', paths: ['app/model/'] },
  { name: 'arch', paths: ['app/arch/'] },
  { name: 'analysis', paths: ['app/analysis/'] },
  { name: 'bench', paths: ['app/bench/'] },
  { name: 'engine', paths: ['app/engine/'] },
  { name: 'contract', paths: ['app/contract.ts'] },
  { name: 'library', paths: ['app/library/'] },
  { name: 'hub', paths: ['app/hub/'] },
  { name: 'node', paths: ['app/node/'] },
  { name: 'cli', paths: ['app/cli.ts'] },
];

// Where the order is explained, named by the lint message.
const ORDER_DOC = 'docs/ARCHITECTURE.md, "The layers of app/"';
const ORDER_TEXT = APP_LAYERS.map((l) => l.name).join(' → ');

/** A module path without its extension: `app/x.ts`, `app/x.js`, `app/x.d.ts` and `app/x` are one module. */
function stripExtension(relPath) {
  return relPath.replace(/(\.d)?\.(ts|tsx|js|jsx|mts|mjs)$/, '');
}

/**
 * The index in APP_LAYERS of the layer covering relPath (relative to the repository root, with `/`
 * separators; the extension may be left out, as in an import), or -1 when no layer covers it.
 * A folder itself (`app/kernels`, as in an import of its index) lies in that folder's layer.
 */
export function appLayerOf(relPath) {
  const module = stripExtension(relPath);
  return APP_LAYERS.findIndex((layer) =>
    layer.paths.some((p) => (p.endsWith('/') ? module === p.slice(0, -1) || module.startsWith(p) : module === stripExtension(p))),
  );
}

function layerOf(root, file) {
  const rel = path.relative(root, file).split(path.sep);
  return LAYERS.includes(rel[0]) ? rel[0] : null;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the one-way import direction between app/, main/ and renderer/, and the order of the layers inside app/' },
    schema: [],
    messages: {
      layer: '{{from}}/ must not import from {{to}}/ ("{{source}}"): {{why}}',
      node: '{{from}}/ must not import the Node built-in "{{source}}": this code also runs in the browser',
      appLayer:
        '{{file}} (layer "{{fromLayer}}") must not import {{target}} (layer "{{toLayer}}"): ' +
        'app/ layers are ordered {{order}}, lowest first (see {{doc}})',
      unlisted:
        '{{path}} is in no app/ layer: extend APP_LAYERS in eslint-rules/layering.js, the ordered list of app/ layers ({{order}})',
    },
  },
  create(context) {
    const root = context.cwd;
    const file = context.filename;
    const from = layerOf(root, file);
    if (!from || from === 'shaders') return {};
    const relFile = path.relative(root, file).split(path.sep).join('/');
    const nodeAllowed = from === 'main' || relFile.startsWith('app/node/') || relFile === 'app/cli.ts';
    const fromAppLayer = from === 'app' ? appLayerOf(relFile) : -1;
    // An app/ file outside every layer is reported once, at its first import inside app/.
    let unlistedReported = false;

    /** An import from one app/ file of another: the target's layer must not be above this file's. */
    function checkAppOrder(node, target) {
      if (fromAppLayer < 0) {
        if (!unlistedReported) context.report({ node, messageId: 'unlisted', data: { path: relFile, order: ORDER_TEXT } });
        unlistedReported = true;
        return;
      }
      const toAppLayer = appLayerOf(target);
      if (toAppLayer < 0) {
        context.report({ node, messageId: 'unlisted', data: { path: target, order: ORDER_TEXT } });
      } else if (toAppLayer > fromAppLayer) {
        const data = {
          file: relFile,
          fromLayer: APP_LAYERS[fromAppLayer].name,
          target,
          toLayer: APP_LAYERS[toAppLayer].name,
          order: ORDER_TEXT,
          doc: ORDER_DOC,
        };
        context.report({ node, messageId: 'appLayer', data });
      }
    }

    function check(node, source) {
      if (typeof source !== 'string') return;
      if (NODE_BUILTINS.has(source) && !nodeAllowed) {
        context.report({ node, messageId: 'node', data: { from, source } });
        return;
      }
      if (!source.startsWith('.')) return;
      const resolved = path.resolve(path.dirname(file), source);
      const to = layerOf(root, resolved);
      if (to && !ALLOWED[from].has(to)) {
        const why = from === 'app'
          ? 'the engine knows nothing of Electron or React'
          : 'main and renderer meet only through app/contract.ts';
        context.report({ node, messageId: 'layer', data: { from, to, source, why } });
      } else if (from === 'app' && to === 'app') {
        checkAppOrder(node, path.relative(root, resolved).split(path.sep).join('/'));
      }
    }

    // `import type` and `export type … from` are ImportDeclaration and ExportNamedDeclaration nodes
    // too, so type-only imports are checked like the others; TSImportType is `import('…').T` in a type.
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
      TSImportType: (node) => node.source && check(node, node.source.value),
    };
  },
};
