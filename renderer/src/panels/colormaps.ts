/**
 * Perceptual colormaps as 256-entry RGBA8 tables, computed here from their published closed
 * forms (no copied data files):
 * - viridis and magma: Matt Zucconi's degree-6 polynomial fits of the matplotlib maps
 *   (shadertoy "viridis, magma, inferno, plasma", WlfXRN), c0 + c1·t + … + c6·t⁶ per channel;
 * - turbo: Anton Mikhailov's polynomial approximation (Google AI blog, 2019), degree 5;
 * - diverging: blue → white → red, two straight lines in RGB through white at t = ½ (for signed
 *   values on a range symmetric about 0, chart-scale.ts symmetricRange, so that 0 is white);
 *   its ends are the end colours of Kenneth Moreland's "cool to warm" map (2009).
 * Tables are built once, on first use.
 */

export type ColormapName = 'viridis' | 'magma' | 'turbo' | 'diverging';
export const COLORMAPS: readonly ColormapName[] = ['viridis', 'magma', 'turbo', 'diverging'];

/** The diverging map's ends (t = 0 and t = 1); its middle (t = ½) is white. */
export const DIVERGING_LOW: readonly [number, number, number] = [0.23, 0.299, 0.754];
export const DIVERGING_HIGH: readonly [number, number, number] = [0.706, 0.016, 0.150];

type Rgb = [number, number, number];

/** Coefficients c0..c6, each [r, g, b]. */
const VIRIDIS: Rgb[] = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

const MAGMA: Rgb[] = [
  [-0.002136485053939582, -0.000749655052795221, -0.005386127855323933],
  [0.2516605407371642, 0.6775232436837668, 2.494026599312351],
  [8.353717279216625, -3.577719514958484, 0.3144679030132573],
  [-27.66873308576866, 14.26473078096533, -13.64921318813922],
  [52.17613981234068, -27.94360607168351, 12.94416944238394],
  [-50.76852536473588, 29.04658282127291, 4.23415299384598],
  [18.65570506591883, -11.48977351997711, -5.601961508734096],
];

/** Turbo: per channel, coefficients of 1, t, t², t³, t⁴, t⁵. */
const TURBO: [number[], number[], number[]] = [
  [0.13572138, 4.6153926, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
  [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
  [0.1066733, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
];

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** Horner evaluation of Σ coef[k]·t^k. */
function poly(coef: readonly number[], t: number): number {
  let y = 0;
  for (let k = coef.length - 1; k >= 0; k--) y = y * t + (coef[k] as number);
  return y;
}

/** The colour at t ∈ [0, 1] (clamped), as RGB in [0, 1]. */
export function colormapRgb(name: ColormapName, t: number): Rgb {
  const x = clamp01(t);
  if (name === 'diverging') {
    const [end, u] = x < 0.5 ? [DIVERGING_LOW, 1 - 2 * x] : [DIVERGING_HIGH, 2 * x - 1];
    return [1 + (end[0] - 1) * u, 1 + (end[1] - 1) * u, 1 + (end[2] - 1) * u];
  }
  if (name === 'turbo') return [clamp01(poly(TURBO[0], x)), clamp01(poly(TURBO[1], x)), clamp01(poly(TURBO[2], x))];
  const c = name === 'viridis' ? VIRIDIS : MAGMA;
  const channel = (i: 0 | 1 | 2) => clamp01(poly(c.map((v) => v[i]), x));
  return [channel(0), channel(1), channel(2)];
}

const tables = new Map<ColormapName, Uint8Array>();

/** 256 RGBA8 entries (1024 bytes): entry i is the colour at i / 255. */
export function colormapTable(name: ColormapName): Uint8Array {
  let table = tables.get(name);
  if (!table) {
    table = new Uint8Array(256 * 4);
    for (let i = 0; i < 256; i++) {
      const [r, g, b] = colormapRgb(name, i / 255);
      table.set([Math.round(r * 255), Math.round(g * 255), Math.round(b * 255), 255], i * 4);
    }
    tables.set(name, table);
  }
  return table;
}

/** CSS colour of the table entry nearest t ∈ [0, 1]. */
export function colormapCss(name: ColormapName, t: number): string {
  const table = colormapTable(name);
  const i = Math.round(clamp01(Number.isFinite(t) ? t : 0) * 255) * 4;
  return `rgb(${table[i]}, ${table[i + 1]}, ${table[i + 2]})`;
}
