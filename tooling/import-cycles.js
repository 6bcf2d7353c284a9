/**
 * Import cycles among app/ files, at two levels: files (a.ts → b.ts → a.ts) and folders, where a
 * file's folder is the folder directly below the top one (app/kernels/matmul.ts lies in app/kernels)
 * or, for a file directly in app/, the file itself (app/random.ts). Every import counts, type-only
 * and dynamic ones included; shader imports (`?raw`), packages and files outside the list are left
 * out. local/layering keeps the app/ layers in order, which rules out cycles between layers; this
 * also finds the cycles inside one layer.
 *
 * `node tooling/import-cycles.js` prints the cycles of the repository's app/ and exits 1 if there are any.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { APP_LAYERS, appLayerOf } from '../eslint-rules/layering.js';

/** Every .ts and .tsx file under root/app/, relative to root with `/` separators, sorted. */
export function appFiles(root) {
  return fs
    .readdirSync(path.join(root, 'app'), { recursive: true })
    .map((f) => `app/${String(f).split(path.sep).join('/')}`)
    .filter((f) => /\.tsx?$/.test(f) && fs.statSync(path.join(root, f)).isFile())
    .sort();
}

/** The module specifiers a file imports: static, type-only, re-exported, dynamic and `import('…')` types. */
function specifiers(fileName, text) {
  const kind = fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, kind);
  const found = [];
  const add = (node) => node && ts.isStringLiteralLike(node) && found.push(node.text);
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * The listed file a relative specifier names, or null (a package, a `?raw` shader, a file not in
 * the list): `./x.js` is `./x.ts` (or .tsx), and `./x` is `./x.ts`, `./x.tsx` or `./x/index.ts`.
 */
function resolve(fromFile, specifier, listed) {
  if (!specifier.startsWith('.') || specifier.includes('?')) return null;
  const base = path.posix.join(path.posix.dirname(fromFile), specifier);
  const stem = base.replace(/\.(js|jsx|mjs)$/, '');
  const candidates = [base, `${stem}.ts`, `${stem}.tsx`, `${stem}.mts`, `${base}/index.ts`, `${base}/index.tsx`];
  return candidates.find((c) => listed.has(c)) ?? null;
}

/** The folder a file counts in for folder-level cycles (see the top of this file). */
function folderOf(file) {
  const parts = file.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : file;
}

/** The import graph over the listed files: each file → the sorted listed files it imports. */
function importGraph(root, files) {
  const listed = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    const targets = new Set();
    for (const specifier of specifiers(file, text)) {
      const target = resolve(file, specifier, listed);
      if (target) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** The strongly connected components of a graph (Tarjan), each a list of nodes. */
function components(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const result = [];
  const visit = (v) => {
    index.set(v, index.size);
    low.set(v, index.get(v));
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      result.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return result;
}

/** The shortest path from `from` to `to` through the nodes of `inside`, both ends included. */
function shortestPath(graph, from, to, inside) {
  const previous = new Map([[from, null]]);
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    if (v === to) break;
    for (const w of graph.get(v)) {
      if (inside.has(w) && !previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  const route = [];
  for (let v = to; v !== null; v = previous.get(v)) route.unshift(v);
  return route;
}

/**
 * Cycles of a graph: for every edge that lies on some cycle, the shortest cycle through it, so
 * that each import to break shows up at least once. Each cycle is its nodes with the first one
 * repeated at the end, started at its smallest node; the list is sorted by length, then by text.
 */
function cycles(graph) {
  const found = new Map();
  for (const component of components(graph)) {
    const inside = new Set(component);
    for (const u of component) {
      for (const v of graph.get(u)) {
        if (!inside.has(v)) continue;
        const ring = u === v ? [u] : [u, ...shortestPath(graph, v, u, inside).slice(0, -1)];
        const start = ring.indexOf([...ring].sort()[0]);
        const nodes = [...ring.slice(start), ...ring.slice(0, start), ring[start]];
        found.set(nodes.join('\n'), nodes);
      }
    }
  }
  return [...found.values()].sort((a, b) => a.length - b.length || a.join('\n').localeCompare(b.join('\n')));
}

/**
 * The import cycles among `files` (relative to root, `/` separators; default: every .ts/.tsx under
 * root/app/). Returns `files`, the file-level cycles, and `folders`, the folder-level ones (imports
 * inside one folder left out). Each cycle has `path` (its nodes, the first repeated at the end) and
 * `text` (`a.ts → b.ts → a.ts`); a folder cycle also has `imports`, one file import per step that
 * makes it (`app/a/x.ts → app/b/y.ts`).
 */
export function findImportCycles(root, files = appFiles(root)) {
  const graph = importGraph(root, files);
  const folderGraph = new Map();
  const example = new Map(); // 'folder\nfolder' → one file import between them
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    if (!folderGraph.has(from)) folderGraph.set(from, new Set());
    for (const target of targets) {
      const to = folderOf(target);
      if (to === from) continue;
      folderGraph.get(from).add(to);
      if (!example.has(`${from}\n${to}`)) example.set(`${from}\n${to}`, `${file} → ${target}`);
    }
  }
  for (const [folder, targets] of folderGraph) folderGraph.set(folder, [...targets].sort());
  return {
    files: cycles(graph).map((nodes) => ({ path: nodes, text: nodes.join(' → ') })),
    folders: cycles(folderGraph).map((nodes) => ({
      path: nodes,
      text: nodes.join(' → '),
      imports: nodes.slice(1).map((to, i) => example.get(`${nodes[i]}\n${to}`)),
    })),
  };
}

/** The CLI: prints the cycles of this repository's app/, marking folder steps that go up the layer order. */
function main() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const { files, folders } = findImportCycles(root);
  const layerName = (file) => APP_LAYERS[appLayerOf(file)]?.name ?? 'no layer';
  console.log(`File cycles in app/: ${files.length}`);
  for (const cycle of files) console.log(`  ${cycle.text}`);
  console.log(`Folder cycles in app/: ${folders.length}`);
  for (const cycle of folders) {
    console.log(`  ${cycle.text}`);
    for (const step of cycle.imports) {
      const [from, to] = step.split(' → ');
      const up = appLayerOf(to) > appLayerOf(from) ? `   (up: ${layerName(from)} → ${layerName(to)})` : '';
      console.log(`    ${step}${up}`);
    }
  }
  return files.length + folders.length > 0 ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
