/**
 * local/layering: imports flow one way (DESIGN.md, "The house").
 *   app/       → app/, shaders/ only (never main/ or renderer/); Node built-ins only in app/node/ and app/cli.ts
 *   main/      → main/, app/, shaders/ (never renderer/)
 *   renderer/  → renderer/, app/, shaders/ (never main/); no Node built-ins
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

function layerOf(root, file) {
  const rel = path.relative(root, file).split(path.sep);
  return LAYERS.includes(rel[0]) ? rel[0] : null;
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the one-way import direction between app/, main/ and renderer/' },
    schema: [],
    messages: {
      layer: '{{from}}/ must not import from {{to}}/ ("{{source}}"): {{why}}',
      node: '{{from}}/ must not import the Node built-in "{{source}}": this code also runs in the browser',
    },
  },
  create(context) {
    const root = context.cwd;
    const file = context.filename;
    const from = layerOf(root, file);
    if (!from || from === 'shaders') return {};
    const relFile = path.relative(root, file).split(path.sep).join('/');
    const nodeAllowed = from === 'main' || relFile.startsWith('app/node/') || relFile === 'app/cli.ts';

    function check(node, source) {
      if (typeof source !== 'string') return;
      if (NODE_BUILTINS.has(source) && !nodeAllowed) {
        context.report({ node, messageId: 'node', data: { from, source } });
        return;
      }
      if (!source.startsWith('.')) return;
      const to = layerOf(root, path.resolve(path.dirname(file), source));
      if (to && !ALLOWED[from].has(to)) {
        const why = from === 'app'
          ? 'the engine knows nothing of Electron or React'
          : 'main and renderer meet only through app/contract.ts';
        context.report({ node, messageId: 'layer', data: { from, to, source, why } });
      }
    }

    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};
