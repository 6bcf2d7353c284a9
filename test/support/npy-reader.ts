/**
 * A hand-written NPY reader for tests, written from the format's specification (numpy's
 * `numpy/lib/format.py` docstring, "Format Version 1.0"), independent of app/formats/npy.ts:
 * magic "\x93NUMPY", major/minor version bytes, little-endian uint16 header length, an ASCII
 * Python dict literal with 'descr', 'fortran_order' and 'shape', then the data. Only what the
 * exports write is supported: '<f4' and '<i4', C order, version 1.0.
 */

export interface ParsedNpy {
  major: number;
  minor: number;
  headerLength: number;
  headerText: string;
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  data: Float32Array | Int32Array;
}

export function parseNpy(bytes: Uint8Array): ParsedNpy {
  const magic = [0x93, ...'NUMPY'.split('').map((c) => c.charCodeAt(0))];
  magic.forEach((b, i) => {
    if (bytes[i] !== b) throw new Error(`not an NPY file: byte ${i} is ${bytes[i]}, expected ${b}`);
  });
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  if (major !== 1) throw new Error(`NPY version ${major}.${minor}: this reader knows 1.0 only`);
  const headerLength = (bytes[8] as number) | ((bytes[9] as number) << 8);
  const headerText = String.fromCharCode(...bytes.subarray(10, 10 + headerLength));
  if (!headerText.endsWith('\n')) throw new Error('NPY header does not end with a newline');
  // The dict literal: pick each key's value with its own pattern.
  const descr = /'descr':\s*'([^']*)'/.exec(headerText)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(headerText)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(headerText)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error(`NPY header is missing a key: ${headerText}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      if (!/^\d+$/.test(s)) throw new Error(`NPY shape entry "${s}" is not a non-negative integer`);
      return Number(s);
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 10 + headerLength;
  if (bytes.length !== start + 4 * count) throw new Error(`NPY data is ${bytes.length - start} bytes, expected ${4 * count}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, 4 * count);
  let data: Float32Array | Int32Array;
  if (descr === '<f4') data = Float32Array.from({ length: count }, (_, i) => view.getFloat32(4 * i, true));
  else if (descr === '<i4') data = Int32Array.from({ length: count }, (_, i) => view.getInt32(4 * i, true));
  else throw new Error(`NPY descr ${descr} is not supported by this reader`);
  return { major, minor, headerLength, headerText, descr, fortranOrder: fortran === 'True', shape, data };
}
