/**
 * NPY (NumPy's `.npy`, format version 1.0) writer for the panels' exports: little-endian float32
 * ('<f4') or int32 ('<i4') arrays in C (row-major) order.
 *
 * Layout (numpy/lib/format.py, "Format Version 1.0"): the magic string "\x93NUMPY", the major and
 * minor version bytes (1, 0), the header length as a little-endian uint16, then the header — an
 * ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (T, N), }` padded
 * with spaces and ended by '\n' so that magic + version + length + header is a multiple of 64
 * bytes — then the raw data.
 */

export type NpyDtype = '<f4' | '<i4';

export interface NpyArray {
  dtype: NpyDtype;
  /** Dimensions, outermost first; [] for a scalar. */
  shape: readonly number[];
  /** shape's product values in C order (converted to the dtype: float32 rounding, int32 truncation). */
  data: ArrayLike<number>;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const PREAMBLE = MAGIC.length + 2 + 2; // magic, version, header length
const ALIGN = 64;

/** The header dict's text, as numpy writes it (a 1-tuple keeps its trailing comma). */
export function npyHeaderText(dtype: NpyDtype, shape: readonly number[]): string {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  return `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${dims}, }`;
}

export function encodeNpy(array: NpyArray): Uint8Array {
  const { dtype, shape, data } = array;
  if (dtype !== '<f4' && dtype !== '<i4') throw new RangeError(`encodeNpy: unsupported dtype ${String(dtype)}`);
  for (const d of shape) if (!(Number.isInteger(d) && d >= 0)) throw new RangeError(`encodeNpy: bad dimension ${d} in [${shape.join(', ')}]`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`encodeNpy: shape [${shape.join(', ')}] holds ${count} values, data has ${data.length}`);
  const text = npyHeaderText(dtype, shape);
  // Spaces, then '\n', up to the next multiple of 64 bytes (at least the '\n').
  const unpadded = PREAMBLE + text.length + 1;
  const headerLength = text.length + 1 + ((ALIGN - (unpadded % ALIGN)) % ALIGN);
  if (headerLength > 0xffff) throw new RangeError(`encodeNpy: header of ${headerLength} bytes needs NPY 2.0`);
  const out = new Uint8Array(PREAMBLE + headerLength + 4 * count);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, headerLength, true);
  const header = `${text}${' '.repeat(headerLength - text.length - 1)}\n`;
  for (let i = 0; i < header.length; i++) out[PREAMBLE + i] = header.charCodeAt(i);
  const at = PREAMBLE + headerLength;
  if (dtype === '<f4') for (let i = 0; i < count; i++) view.setFloat32(at + 4 * i, data[i] as number, true);
  else for (let i = 0; i < count; i++) view.setInt32(at + 4 * i, data[i] as number, true);
  return out;
}
