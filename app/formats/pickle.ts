/**
 * A pickle reader that never calls anything. Python's pickle is a small stack machine whose
 * GLOBAL, REDUCE, BUILD, INST, OBJ and NEWOBJ opcodes import and call arbitrary Python — that is
 * how a hostile .bin runs `os.system`. This reader understands only the opcodes a state dict needs
 * (protocols 2–5: tuples, lists, dicts, ints, floats, strings, memo, marks, persistent ids) and
 * turns GLOBAL into an inert name that the caller's `global` hook must accept from its allow-list
 * (anything else is refused on the spot); REDUCE and BUILD hand plain data to the caller's hooks,
 * which build plain data — no code path resolves a name to a function. INST, OBJ, NEWOBJ,
 * NEWOBJ_EX, EXT*, text PERSID, and every opcode not listed are refused.
 *
 * Bounded: the input's length, every string's length (checked against the bytes left before
 * anything is decoded), the memo (a Map, so a huge memo index allocates nothing), the stack and
 * mark depth, and how deeply containers nest (no function here recurses over a value, so a cycle
 * made through the memo cannot hang it either). Every failure is a ModelFileError naming the file
 * and the byte offset.
 */
import { clip, ModelFileError } from './errors.js';

export type DictKey = string | number | boolean | null;

export interface PickleTuple {
  kind: 'tuple';
  items: PickleValue[];
  depth: number;
}
export interface PickleList {
  kind: 'list';
  items: PickleValue[];
  depth: number;
}
export interface PickleDict {
  kind: 'dict';
  entries: Map<DictKey, PickleValue>;
  depth: number;
  /** The global that made it through REDUCE (e.g. "collections.OrderedDict"), or null for EMPTY_DICT. */
  madeBy: string | null;
}
/** A GLOBAL the caller's allow-list accepted: a name, never a function. */
export interface PickleGlobal {
  kind: 'global';
  module: string;
  name: string;
}
/** A value a hook built from plain data (a storage, a tensor); `type` says which. */
export interface PickleObject {
  kind: 'object';
  type: string;
  data: unknown;
}
export type PickleValue = null | boolean | number | string | PickleTuple | PickleList | PickleDict | PickleGlobal | PickleObject;

export interface PickleHooks {
  /** Accepts a GLOBAL from the allow-list (returning its inert name) or throws. */
  global(module: string, name: string, at: number): PickleGlobal;
  /** BINPERSID: the persistent id (a tuple) → a value. */
  persistentLoad(pid: PickleValue, at: number): PickleValue;
  /** REDUCE: `callable` is an accepted global; `args` a tuple. Builds plain data or throws. */
  reduce(callable: PickleGlobal, args: PickleTuple, at: number): PickleValue;
  /** BUILD: sets `state` on `target` (or throws). */
  build(target: PickleValue, state: PickleValue, at: number): void;
}

export const PICKLE_LIMITS = {
  /** A state dict's pickle holds ~150 bytes a tensor: a 2.8B Mamba's is ~100 KB. */
  maxBytes: 64 * 1024 * 1024,
  maxStringBytes: 1024 * 1024,
  maxMemo: 1_000_000,
  maxStack: 1_000_000,
  maxMarks: 64,
  maxDepth: 32,
  /** Longest GLOBAL module or name line. */
  maxGlobalName: 256,
};

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

const depthOf = (v: PickleValue): number => (v !== null && typeof v === 'object' && 'depth' in v ? v.depth : 0);

const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x50: 'PERSID',
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8e: 'BINBYTES8', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
  0x67: 'GET', 0x70: 'PUT', 0x64: 'DICT', 0x6c: 'LIST', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x8b: 'LONG4',
  0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP',
};

/**
 * Runs the pickle in `bytes` with `hooks` and returns the value STOP leaves. Errors name `file`
 * and say where in the pickle (`label`, e.g. the zip entry, and the byte).
 */
export function readPickle(file: string, bytes: Uint8Array, hooks: PickleHooks, limits = PICKLE_LIMITS, label = 'pickle'): PickleValue {
  if (bytes.byteLength > limits.maxBytes) throw new ModelFileError(file, `pickle of ${bytes.byteLength} bytes is larger than any state dict's (limit ${limits.maxBytes})`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let op: number;
  let opAt = 0;
  const fail = (problem: string) => new ModelFileError(file, `${label} byte ${opAt}: ${problem}`);
  const need = (n: number) => {
    if (pos + n > bytes.byteLength) throw fail('the pickle ends in the middle of an opcode (truncated)');
  };
  const u8 = () => {
    need(1);
    return bytes[pos++] as number;
  };
  const readLength = (n: 1 | 4 | 8): number => {
    need(n);
    let length: number;
    if (n === 1) length = bytes[pos] as number;
    else if (n === 4) length = v.getUint32(pos, true);
    else {
      const big = v.getBigUint64(pos, true);
      length = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
    pos += n;
    return length;
  };
  const text = (length: number): string => {
    if (length > limits.maxStringBytes) throw fail(`a string of ${length} bytes, longer than any a state dict holds (limit ${limits.maxStringBytes})`);
    need(length);
    const slice = bytes.subarray(pos, pos + length);
    pos += length;
    try {
      return utf8.decode(slice);
    } catch {
      throw fail('a string that is not UTF-8');
    }
  };
  const line = (): string => {
    const start = pos;
    const end = bytes.indexOf(0x0a, start);
    if (end < 0 || end - start > limits.maxGlobalName) throw fail('a GLOBAL name that is not a short line');
    pos = end + 1;
    try {
      return utf8.decode(bytes.subarray(start, end));
    } catch {
      throw fail('a GLOBAL name that is not UTF-8');
    }
  };
  const push = (x: PickleValue) => {
    if (stack.length >= limits.maxStack) throw fail(`more than ${limits.maxStack} values on the stack`);
    stack.push(x);
  };
  const pop = (): PickleValue => {
    const x = stack.pop();
    if (x === undefined) throw fail('pops an empty stack');
    if (x === MARK) throw fail('pops a mark');
    return x;
  };
  const top = (): PickleValue => {
    const x = stack[stack.length - 1];
    if (x === undefined || x === MARK) throw fail('reads an empty stack');
    return x;
  };
  /** The values above the last mark, and the mark gone. */
  const popMark = (): PickleValue[] => {
    const at = marks.pop();
    if (at === undefined) throw fail('no mark to pop to');
    const items = stack.splice(at + 1) as PickleValue[];
    stack.pop();
    return items;
  };
  const container = (items: PickleValue[]): number => {
    let depth = 0;
    for (const x of items) depth = Math.max(depth, depthOf(x));
    if (depth + 1 > limits.maxDepth) throw fail(`containers nested deeper than ${limits.maxDepth} levels`);
    return depth + 1;
  };
  const tuple = (items: PickleValue[]): PickleTuple => ({ kind: 'tuple', items, depth: container(items) });
  const grow = (target: PickleList | PickleDict, added: PickleValue[]) => {
    const depth = Math.max(target.depth, container(added));
    target.depth = depth;
  };
  const dictKey = (k: PickleValue): DictKey => {
    if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean') return k;
    throw fail(`a dict key that is a ${k.kind}`);
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (target === null || typeof target !== 'object' || target.kind !== 'dict') throw fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2 !== 0) throw fail('SETITEMS with an odd number of values');
    grow(target, items);
    for (let i = 0; i < items.length; i += 2) target.entries.set(dictKey(items[i] as PickleValue), items[i + 1] as PickleValue);
  };
  const appendItems = (target: PickleValue, items: PickleValue[]) => {
    if (target === null || typeof target !== 'object' || target.kind !== 'list') throw fail('APPEND(S) on something that is not a list');
    grow(target, items);
    for (const x of items) target.items.push(x); // not push(...items): a million arguments overflow the call stack
  };
  const memoPut = (index: number) => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) throw fail(`more than ${limits.maxMemo} memo entries`);
    memo.set(index, top());
  };
  const memoGet = (index: number) => {
    const x = memo.get(index);
    if (x === undefined) throw fail(`memo entry ${index} was never stored`);
    push(x);
  };
  const int = (n: number) => push(n);

  for (;;) {
    opAt = pos;
    op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const version = u8();
        if (version < 2 || version > 5) throw fail(`pickle protocol ${version}; torch.save writes 2 (4 or 5 on request)`);
        break;
      }
      case 0x95: { // FRAME: a length hint only
        const length = readLength(8);
        if (pos + length > bytes.byteLength) throw fail('a frame runs past the end of the pickle');
        break;
      }
      case 0x2e: { // STOP
        const result = pop();
        if (stack.length !== 0 || marks.length !== 0) throw fail('STOP with values left on the stack');
        if (pos !== bytes.byteLength) throw fail(`${bytes.byteLength - pos} bytes after STOP`);
        return result;
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) throw fail(`marks nested deeper than ${limits.maxMarks}`);
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x74: { // TUPLE
        const items = popMark();
        push(tuple(items));
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push({ kind: 'list', items: [], depth: 1 });
        break;
      case 0x61: { // APPEND
        const x = pop();
        appendItems(top(), [x]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push({ kind: 'dict', entries: new Map(), depth: 1, madeBy: null });
        break;
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        need(4);
        int(v.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        int(u8());
        break;
      case 0x4d: // BININT2
        need(2);
        int(v.getUint16(pos, true));
        pos += 2;
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8();
        if (n > 8) throw fail(`an integer of ${n} bytes, larger than any a state dict holds`);
        need(n);
        let big = 0n;
        for (let i = n - 1; i >= 0; i--) big = (big << 8n) | BigInt(bytes[pos + i] as number);
        if (n > 0 && ((bytes[pos + n - 1] as number) & 0x80) !== 0) big -= 1n << BigInt(8 * n);
        pos += n;
        if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) throw fail(`integer ${big} is too large`);
        int(Number(big));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(v.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(text(readLength(4)));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(readLength(1)));
        break;
      case 0x8d: // BINUNICODE8
        push(text(readLength(8)));
        break;
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(readLength(4));
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(readLength(4));
        break;
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(hooks.global(module, name, opAt));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL of values that are not strings');
        if (module.length > limits.maxGlobalName || name.length > limits.maxGlobalName) throw fail('a STACK_GLOBAL name that is too long');
        push(hooks.global(module, name, opAt));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (callable === null || typeof callable !== 'object' || callable.kind !== 'global') throw fail('REDUCE of something that is not an accepted global');
        if (args === null || typeof args !== 'object' || args.kind !== 'tuple') throw fail('REDUCE with arguments that are not a tuple');
        push(hooks.reduce(callable, args, opAt));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        hooks.build(top(), state, opAt);
        break;
      }
      case 0x51: { // BINPERSID
        push(hooks.persistentLoad(pop(), opAt));
        break;
      }
      default: {
        const name = OPCODE_NAMES[op];
        const shown = `opcode 0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`;
        throw fail(`${shown} is not allowed: the reader understands only what a state dict needs, and never builds or calls arbitrary objects`);
      }
    }
  }
}

/** A global's name as Python writes it, for messages. */
export const globalName = (module: string, name: string) => clip(`${module}.${name}`, 160);
