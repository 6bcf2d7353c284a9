/**
 * PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip format since torch 1.6), read
 * without running any of them. The archive (zip.ts) holds `<archive>/data.pkl`, the pickled state
 * dict, `<archive>/data/<key>` per storage, `<archive>/byteorder` (torch ≥ 2.1) and a few version
 * records; `<archive>` is the folder of the first entry, as torch's own reader takes it.
 *
 * data.pkl is read by pickle.ts with the allow-list below, which is all a state dict pickles:
 *   collections.OrderedDict                 REDUCE () → a dict; BUILD sets its `_metadata` (ignored)
 *   torch._utils._rebuild_tensor_v2         REDUCE (storage, offset, size, stride, requires_grad, hooks[, metadata])
 *   torch._utils._rebuild_parameter         REDUCE (tensor, requires_grad, hooks): nn.Parameter
 *   torch._utils._rebuild_parameter_with_state  the same with the Parameter's attributes (ignored)
 *   torch.<T>Storage                        named in a persistent id ('storage', T, key, location, numel)
 * Any other global — os.system, builtins.eval, a class's __reduce__ — is refused when the GLOBAL
 * opcode names it, before anything could use it; nothing is ever called. A tensor becomes a byte
 * range of its storage's entry (offset × element size, elements × element size): contiguous views
 * with storage offsets are byte ranges; a non-contiguous tensor is refused, naming it. Tensors that
 * share a storage (a tied lm_head and embedding) get the same range. The legacy format (torch < 1.6:
 * a pickle stream after a magic number, or a tar) and a big-endian file are refused.
 */
import { clip, ModelFileError, preview } from './errors.js';
import { globalName, PICKLE_LIMITS, readPickle, type PickleDict, type PickleGlobal, type PickleHooks, type PickleObject, type PickleTuple, type PickleValue } from './pickle.js';
import { DTYPE_BYTES, MAX_TENSORS, type SafetensorsDtype } from './safetensors.js';
import type { ByteSource } from './source.js';
import { readZipDirectory, zipEntryData, type ZipDirectory } from './zip.js';

/** The storage classes torch pickles (`getattr(torch, storage._pickle_storage_type())`) and their element types. */
export const STORAGE_DTYPES: Readonly<Record<string, SafetensorsDtype>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const REBUILD = new Set(['_rebuild_tensor_v2', '_rebuild_parameter', '_rebuild_parameter_with_state']);

/** A tensor of the checkpoint: a byte range of the file (absolute), like a safetensors TensorInfo. */
export interface PytorchTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  offset: number;
  byteLength: number;
  /** The storage it views (`data/<key>`): tensors with the same key share bytes. */
  storageKey: string;
}

export interface PytorchCheckpoint {
  file: string;
  fileSize: number;
  /** The archive's folder name (`archive`, or the file's stem for torch 1.x). */
  archive: string;
  tensors: Map<string, PytorchTensor>;
}

/** Dimensions of one tensor. */
export const MAX_DIMS = 8;

interface Storage {
  dtype: SafetensorsDtype;
  key: string;
  numel: number;
}
interface Tensor {
  storage: Storage;
  storageOffset: number;
  shape: number[];
  stride: number[];
}

const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** Why a file that is not a zip archive is refused: the legacy torch format, or not PyTorch at all. */
async function notZip(source: ByteSource): Promise<ModelFileError> {
  const head = await source.read(0, Math.min(source.size, 512));
  if (LEGACY_MAGIC.every((b, i) => head[i] === b)) {
    return new ModelFileError(source.name, 'is in the legacy PyTorch format (torch.save before torch 1.6, a bare pickle stream), which the studio does not read: re-save it with a newer torch or convert it to safetensors');
  }
  if (head.byteLength >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar') {
    return new ModelFileError(source.name, 'is in the oldest PyTorch format (a tar archive), which the studio does not read: convert it to safetensors');
  }
  if (head[0] === 0x80) return new ModelFileError(source.name, 'is a bare pickle, not a PyTorch zip checkpoint (torch.save since torch 1.6); the studio does not read it');
  return new ModelFileError(source.name, 'is not a PyTorch checkpoint: no zip archive (torch.save writes one since torch 1.6)');
}

/** A pickled value in a message: a primitive as it is, a container or object by its kind (never its insides). */
function shown(x: PickleValue | undefined): string {
  if (x === undefined) return 'nothing';
  if (x === null || typeof x !== 'object') return preview(x);
  if (x.kind === 'global') return globalName(x.module, x.name);
  if (x.kind === 'dict') return `a dict of ${x.entries.size} entries`;
  if (x.kind === 'object') return `a ${x.type}`;
  return `a ${x.kind} of ${x.items.length} items`;
}

const isTuple = (x: PickleValue): x is PickleTuple => x !== null && typeof x === 'object' && x.kind === 'tuple';
const isDict = (x: PickleValue): x is PickleDict => x !== null && typeof x === 'object' && x.kind === 'dict';
const asObject = (x: PickleValue, type: string): PickleObject | null => (x !== null && typeof x === 'object' && x.kind === 'object' && x.type === type ? x : null);

/** The pickle hooks of a state dict: the allow-list, and plain-data builders for what it names. */
function stateDictHooks(file: string, label: string): PickleHooks {
  const storages = new Map<string, Storage>();
  let tensors = 0;
  const fail = (at: number, problem: string) => new ModelFileError(file, `${label} byte ${at}: ${problem}`);
  const count = (at: number, what: string, x: PickleValue, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0 || x > max) throw fail(at, `${what} ${shown(x)} is not a non-negative integer`);
    return x;
  };
  const ints = (at: number, what: string, x: PickleValue): number[] => {
    if (!isTuple(x)) throw fail(at, `${what} is not a tuple`);
    if (x.items.length > MAX_DIMS) throw fail(at, `${what} has ${x.items.length} dimensions (limit ${MAX_DIMS})`);
    return x.items.map((d) => count(at, `${what} entry`, d));
  };
  const tensorOf = (at: number, x: PickleValue): Tensor => {
    const t = asObject(x, 'tensor');
    if (!t) throw fail(at, 'a Parameter built from something that is not a tensor');
    return t.data as Tensor;
  };
  return {
    global(module, name, at) {
      const ok =
        (module === 'collections' && name === 'OrderedDict') ||
        (module === 'torch._utils' && REBUILD.has(name)) ||
        (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name));
      if (!ok) {
        throw fail(at, `refers to ${preview(globalName(module, name))}, which a PyTorch state dict never needs; the file is refused and nothing in it was run (only tensors, OrderedDict and torch's storage types are read)`);
      }
      const g: PickleGlobal = { kind: 'global', module, name };
      return g;
    },
    persistentLoad(pid, at) {
      if (!isTuple(pid) || pid.items.length !== 5 || pid.items[0] !== 'storage') throw fail(at, `persistent id ${shown(pid)} is not ('storage', type, key, location, numel)`);
      const [, type, key, location, numel] = pid.items;
      if (type === null || typeof type !== 'object' || type.kind !== 'global' || type.module !== 'torch' || !Object.hasOwn(STORAGE_DTYPES, type.name)) {
        throw fail(at, `persistent id names storage type ${shown(type)}, not one of torch's storage classes`);
      }
      if (typeof key !== 'string' || !/^[0-9A-Za-z_.-]{1,64}$/.test(key)) throw fail(at, `storage key ${shown(key)} is not a short name`);
      if (typeof location !== 'string' || location.length > 64) throw fail(at, `storage location ${shown(location)} is not a device name`);
      const dtype = STORAGE_DTYPES[type.name] as SafetensorsDtype;
      const n = count(at, 'storage size', numel as PickleValue);
      let storage = storages.get(key);
      if (!storage) {
        storage = { dtype, key, numel: n };
        storages.set(key, storage);
      } else if (storage.dtype !== dtype || storage.numel !== n) {
        throw fail(at, `storage "${key}" is named again as ${type.name} of ${n} elements, differently from before`);
      }
      return { kind: 'object', type: 'storage', data: storage };
    },
    reduce(callable, args, at) {
      const a = args.items;
      if (callable.module === 'collections') {
        if (a.length !== 0) throw fail(at, 'OrderedDict(…) with arguments; a state dict pickles OrderedDict()');
        return { kind: 'dict', entries: new Map(), depth: 1, madeBy: 'collections.OrderedDict' };
      }
      if (callable.module === 'torch') throw fail(at, `storage class torch.${callable.name} called directly; storages come only from persistent ids`);
      if (callable.name === '_rebuild_tensor_v2') {
        if (a.length !== 6 && a.length !== 7) throw fail(at, `_rebuild_tensor_v2 with ${a.length} arguments, expected 6 or 7`);
        const storage = asObject(a[0] as PickleValue, 'storage');
        if (!storage) throw fail(at, '_rebuild_tensor_v2 of something that is not a storage');
        const storageOffset = count(at, 'storage offset', a[1] as PickleValue);
        const shape = ints(at, 'tensor size', a[2] as PickleValue);
        const stride = ints(at, 'tensor stride', a[3] as PickleValue);
        if (stride.length !== shape.length) throw fail(at, `tensor size has ${shape.length} dimensions and its stride ${stride.length}`);
        if (typeof a[4] !== 'boolean') throw fail(at, 'tensor requires_grad is not a boolean');
        if (!isDict(a[5] as PickleValue)) throw fail(at, 'tensor backward hooks are not an OrderedDict');
        if (a.length === 7 && !(isDict(a[6] as PickleValue) && (a[6] as PickleDict).entries.size === 0)) {
          throw fail(at, `tensor metadata ${shown(a[6])} is not empty; the studio reads plain tensors only`);
        }
        if (++tensors > MAX_TENSORS) throw fail(at, `more than ${MAX_TENSORS} tensors, more than any real model file`);
        const tensor: Tensor = { storage: storage.data as Storage, storageOffset, shape, stride };
        return { kind: 'object', type: 'tensor', data: tensor };
      }
      // _rebuild_parameter(data, requires_grad, hooks) and _rebuild_parameter_with_state(…, state): the tensor itself.
      const expected = callable.name === '_rebuild_parameter' ? 3 : 4;
      if (a.length !== expected) throw fail(at, `${callable.name} with ${a.length} arguments, expected ${expected}`);
      const tensor = tensorOf(at, a[0] as PickleValue);
      return { kind: 'object', type: 'tensor', data: tensor };
    },
    build(target, state, at) {
      // OrderedDict.__reduce__ pickles the instance's attributes (a state dict's `_metadata`) as BUILD state.
      if (!isDict(target) || target.madeBy !== 'collections.OrderedDict') throw fail(at, 'BUILD on something that is not an OrderedDict');
      if (!isDict(state)) throw fail(at, `BUILD state ${shown(state)} is not a dict of attributes`);
    },
  };
}

/** The byte range of a tensor in its storage: contiguous row-major only. */
function tensorRange(file: string, name: string, t: Tensor, storageBytes: number): { start: number; length: number } {
  const bad = (problem: string) => new ModelFileError(file, `tensor "${clip(name, 200)}": ${problem}`);
  const size = DTYPE_BYTES[t.storage.dtype];
  let expected = 1;
  let elements = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    const d = t.shape[i] as number;
    // A dimension of size 1 may have any stride (torch's own contiguity rule).
    if (d !== 1 && t.stride[i] !== expected) {
      throw bad(`is not contiguous (size [${t.shape.join(', ')}], stride [${t.stride.join(', ')}]): a transposed or strided view, which the studio does not read; save tensor.contiguous() or convert to safetensors`);
    }
    expected *= d;
    elements *= d;
    if (!Number.isSafeInteger(elements)) throw bad(`size [${t.shape.join(', ')}] is too large`);
  }
  const start = t.storageOffset * size;
  const length = elements * size;
  if (!Number.isSafeInteger(start + length) || (elements > 0 && start + length > storageBytes)) {
    throw bad(`views elements ${t.storageOffset}–${t.storageOffset + elements} of storage "${t.storage.key}", which holds ${storageBytes / size}`);
  }
  return { start, length };
}

/** Reads a torch.save zip checkpoint's state dict: names, dtypes, shapes and byte ranges; no tensor data. */
export async function readPytorchCheckpoint(source: ByteSource): Promise<PytorchCheckpoint> {
  const file = source.name;
  if (source.size < 4) throw new ModelFileError(file, `too short for a PyTorch checkpoint (${source.size} bytes)`);
  const magic = await source.read(0, 4);
  if (!(magic[0] === 0x50 && magic[1] === 0x4b && magic[2] === 0x03 && magic[3] === 0x04)) throw await notZip(source);
  const zip: ZipDirectory = await readZipDirectory(source);
  const first = zip.entries[0];
  if (!first) throw new ModelFileError(file, 'is an empty zip archive, not a PyTorch checkpoint');
  const slash = first.name.indexOf('/');
  if (slash <= 0) throw new ModelFileError(file, `zip entry "${clip(first.name, 120)}" is not in a folder: not a PyTorch checkpoint`);
  const archive = first.name.slice(0, slash);
  const record = (name: string) => zip.byName.get(`${archive}/${name}`);
  const pklEntry = record('data.pkl');
  if (!pklEntry) {
    const script = record('constants.pkl') || record('code/') || zip.entries.some((e) => e.name.startsWith(`${archive}/code/`));
    throw new ModelFileError(file, script ? 'is a TorchScript archive (torch.jit.save), not a state dict' : `has no ${archive}/data.pkl: not a torch.save checkpoint`);
  }
  const byteorder = record('byteorder');
  if (byteorder) {
    if (byteorder.size > 16) throw new ModelFileError(file, `its byteorder record is ${byteorder.size} bytes long`);
    const range = await zipEntryData(source, byteorder);
    const order = new TextDecoder().decode(await source.read(range.offset, range.length));
    if (order !== 'little') {
      throw new ModelFileError(file, order === 'big' ? 'was saved on a big-endian machine (byteorder "big"); the studio reads little-endian checkpoints only' : `byteorder record ${preview(order)} is neither "little" nor "big"`);
    }
  }
  if (pklEntry.size > PICKLE_LIMITS.maxBytes) throw new ModelFileError(file, `its data.pkl is ${pklEntry.size} bytes, larger than any state dict's (limit ${PICKLE_LIMITS.maxBytes})`);
  const pklRange = await zipEntryData(source, pklEntry);
  const pkl = await source.read(pklRange.offset, pklRange.length);
  const label = `${clip(archive, 80)}/data.pkl`;
  const root = readPickle(file, pkl, stateDictHooks(file, label), PICKLE_LIMITS, label);
  if (!isDict(root)) throw new ModelFileError(file, `holds a pickled ${root === null ? 'None' : typeof root === 'object' ? root.kind : typeof root}, not a state dict (a dict of tensors)`);

  const raw: [string, Tensor][] = [];
  for (const [key, value] of root.entries) {
    if (typeof key !== 'string') throw new ModelFileError(file, `state dict key ${shown(key)} is not a string`);
    const t = asObject(value, 'tensor');
    if (!t) {
      const nested = isDict(value) && [...value.entries.values()].some((x) => asObject(x, 'tensor'));
      throw new ModelFileError(file, `"${clip(key, 200)}" is ${nested ? 'a dict of tensors inside the checkpoint (a training checkpoint, not a state dict): save its state dict alone' : `not a tensor but ${shown(value)}`}`);
    }
    raw.push([key, t.data as Tensor]);
  }

  // Each storage's entry, read once (its local header gives where its bytes start).
  const storageData = new Map<string, { offset: number; length: number }>();
  const keys = [...new Set(raw.map(([, t]) => t.storage.key))];
  for (let i = 0; i < keys.length; i += 32) {
    await Promise.all(
      keys.slice(i, i + 32).map(async (key) => {
        const entry = record(`data/${key}`);
        if (!entry) throw new ModelFileError(file, `storage "${key}" has no entry ${archive}/data/${key} in the archive`);
        storageData.set(key, await zipEntryData(source, entry));
      }),
    );
  }
  const tensors = new Map<string, PytorchTensor>();
  for (const [name, t] of raw) {
    const data = storageData.get(t.storage.key) as { offset: number; length: number };
    const storageBytes = t.storage.numel * DTYPE_BYTES[t.storage.dtype];
    if (data.length !== storageBytes) {
      throw new ModelFileError(file, `storage "${t.storage.key}" holds ${data.length} bytes, but ${t.storage.numel} elements of ${t.storage.dtype} need ${storageBytes}`);
    }
    const { start, length } = tensorRange(file, name, t, storageBytes);
    tensors.set(name, { name, dtype: t.storage.dtype, shape: t.shape, offset: data.offset + start, byteLength: length, storageKey: t.storage.key });
  }
  return { file, fileSize: source.size, archive, tensors };
}
