/**
 * Line and bar charts as publication figures (renderer/src/panels/publish-lines.ts): the scene and
 * its SVG hold the title, the axis labels, tick labels, one legend entry per series, one polyline
 * (or set of bars) per series at coordinates computed by hand below from the documented layout
 * (plots from x 72 to width − 24; legend rows of 16 px from y 30, plots 10 px under them; 44 px
 * under the plots for the x axis; point i at the centre of cell i), and nothing for hover (no
 * vertical line across a plot). The scale multiplies the pixel size, not the layout.
 */
import { describe, expect, it } from 'vitest';
import { compareFigure, knockoutFigure, lineChartFigure, lineFigureScene, plotRange, sceneSvg, type LineFigureSpec, type Prim } from '../../renderer/src/panels/publish-lines';

const lines: LineFigureSpec = {
  title: 'Test figure',
  width: 400,
  height: 300,
  xLabel: 'token (position)',
  x: { kind: 'index', count: 3 },
  plots: [
    {
      kind: 'lines',
      yLabel: 'value (units)',
      yRange: { min: 0, max: 2 },
      series: [
        { name: 's1', values: [0, 1, 2], colour: '#112233' },
        { name: 's2', values: [2, NaN, 0], colour: '#445566' },
      ],
    },
  ],
};

const texts = (prims: Prim[], role: string) => prims.flatMap((p) => (p.kind === 'text' && p.role === role ? [p.text] : []));
const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-6);

describe('line figures', () => {
  it('places each series point where the layout says, with axes, ticks and a legend', () => {
    const scene = lineFigureScene(lines);
    expect(scene.width).toBe(400);
    expect(scene.height).toBe(300);
    expect(texts(scene.prims, 'title')).toEqual(['Test figure']);
    expect(texts(scene.prims, 'x-label')).toEqual(['token (position)']);
    expect(texts(scene.prims, 'y-label')).toEqual(['value (units)']);
    expect(texts(scene.prims, 'legend')).toEqual(['s1', 's2']);
    // Plot: x 72 … 376 (304 wide, 3 cells of 101⅓), y 56 … 256 (200 high over 0 … 2).
    expect(texts(scene.prims, 'x-axis')).toEqual(['0', '1', '2']);
    expect(texts(scene.prims, 'y-axis')).toEqual(['0', '0.5', '1.0', '1.5', '2.0']);
    const polys = scene.prims.filter((p): p is Extract<Prim, { kind: 'polyline' }> => p.kind === 'polyline');
    const s1 = polys.filter((p) => p.series === 's1');
    expect(s1).toHaveLength(1);
    const want: [number, number][] = [
      [72 + 304 / 6, 256],
      [224, 156],
      [72 + (304 * 5) / 6, 56],
    ];
    s1[0]!.points.forEach(([x, y], i) => {
      close(x, want[i]![0]);
      close(y, want[i]![1]);
    });
    // s2: NaN breaks the line into two lone points (each a stub, so that it shows).
    const s2 = polys.filter((p) => p.series === 's2');
    expect(s2).toHaveLength(2);
    close(s2[0]!.points[0]![0], 72 + 304 / 6);
    close(s2[0]!.points[0]![1], 56);
    close(s2[1]!.points[0]![1], 256);
    const frame = scene.prims.find((p) => p.kind === 'rect' && p.role === 'frame') as Extract<Prim, { kind: 'rect' }>;
    expect([frame.x, frame.y, frame.w, frame.h]).toEqual([72, 56, 304, 200]);
  });

  it('labels the x axis in the series’ own units when points are spaced (xOffset, xStep)', () => {
    // 5 points at 0, 128, 256, 384, 512 tokens: the ticks are values of that axis, placed at their points.
    const spec = lineChartFigure({ title: 'KV', series: [{ name: 'kv', values: [0, 1, 2, 3, 4], colour: '#000' }], xLabel: 'context (tokens)', yLabel: 'memory (KiB)', xStep: 128 });
    expect(spec.x).toEqual({ kind: 'index', count: 5, offset: 0, step: 128 });
    const scene = lineFigureScene(spec);
    const labels = texts(scene.prims, 'x-axis');
    expect(labels.length).toBeGreaterThan(2);
    expect(Math.max(...labels.map(Number))).toBeGreaterThan(400); // token values, not point indices 0 … 4
    const series = scene.prims.find((p) => p.kind === 'polyline') as Extract<Prim, { kind: 'polyline' }>;
    const x0 = series.points[0]![0];
    const x4 = series.points[4]![0];
    for (const t of labels) {
      const tick = scene.prims.find((p) => p.kind === 'text' && p.role === 'x-axis' && p.text === t) as Extract<Prim, { kind: 'text' }>;
      close(tick.x, x0 + (Number(t) / 512) * (x4 - x0));
    }
  });

  it('has nothing for hover: no vertical line across a plot, only known parts', () => {
    const scene = lineFigureScene(lineChartFigure({ title: 'Retention', series: [{ name: 'r', values: [1, 0.5, 0.25, 0.125], colour: '#000' }], xLabel: 'token', yLabel: 'retention', yRange: { min: 0, max: 1 }, guides: [0.5] }));
    const roles = new Set(scene.prims.map((p) => p.role));
    for (const r of roles) expect(['title', 'legend', 'heading', 'y-axis', 'y-label', 'guide', 'zero', 'bar', 'series', 'frame', 'x-axis', 'x-label']).toContain(r);
    const frame = scene.prims.find((p) => p.role === 'frame') as Extract<Prim, { kind: 'rect' }>;
    const vertical = scene.prims.filter((p) => p.kind === 'line' && p.x1 === p.x2 && Math.abs(p.y2 - p.y1) > 8);
    expect(vertical).toEqual([]);
    // The guide at 0.5 is a horizontal dashed line across the plot's middle.
    const guide = scene.prims.find((p) => p.role === 'guide') as Extract<Prim, { kind: 'line' }>;
    expect(guide.dash).toBe(true);
    close(guide.y1, frame.y + frame.h / 2);
    expect(sceneSvg(scene)).not.toMatch(/hover|marker/i);
  });

  it('draws grouped bars from zero, one colour per series, categories on the x axis', () => {
    const scene = lineFigureScene({
      title: 'Bars',
      width: 400,
      height: 300,
      xLabel: 'next token',
      x: { kind: 'category', names: ['a', 'b'] },
      plots: [
        {
          kind: 'bars',
          yLabel: 'probability',
          series: [
            { name: 'p', values: [0.5, 0.25], colour: '#aa0000' },
            { name: 'q', values: [0.25, NaN], colour: '#0000aa' },
          ],
        },
      ],
    });
    // Range 0 … 0.525 (0.5 plus 5 % headroom, none under a bar's 0) over y 256 … 56: v is 200 · v / 0.525 px
    // high (0.5 → 190.476, 0.25 → 95.238); cells 152 wide, bars 0.8 · 152 / 2 = 60.8 wide from 0.1 · 152 in.
    const bars = scene.prims.filter((p): p is Extract<Prim, { kind: 'rect' }> => p.kind === 'rect' && p.role === 'bar');
    const got = bars.map((b) => [b.series, b.fill, b.x, b.y, b.w, b.h].map((v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v)));
    expect(got).toEqual([
      ['p', '#aa0000', 87.2, 65.524, 60.8, 190.476],
      ['p', '#aa0000', 239.2, 160.762, 60.8, 95.238],
      ['q', '#0000aa', 148, 160.762, 60.8, 95.238],
    ]);
    expect(texts(scene.prims, 'x-axis')).toEqual(['a', 'b']);
    expect(texts(scene.prims, 'legend')).toEqual(['p', 'q']);
    expect(scene.prims.filter((p) => p.role === 'legend' && p.kind === 'rect').map((p) => (p as { fill: string }).fill)).toEqual(['#aa0000', '#0000aa']);
  });

  it('scales the pixel size, not the layout, and escapes text', () => {
    const scene = lineFigureScene({ ...lines, title: 'A <b> & "c"', plots: [{ ...lines.plots[0]!, series: [{ name: "x'<y>", values: [1, 2, 3], colour: '#000000' }] }] });
    const one = sceneSvg(scene, 1);
    const four = sceneSvg(scene, 4);
    expect(one).toContain('width="400" height="300" viewBox="0 0 400 300"');
    expect(four).toContain('width="1600" height="1200" viewBox="0 0 400 300"');
    expect(four.replace('width="1600" height="1200"', 'width="400" height="300"')).toBe(one);
    expect(one).toContain('<title>A &lt;b&gt; &amp; &quot;c&quot;</title>');
    expect(one).toMatch(/<text data-role="title"[^>]*>A &lt;b&gt; &amp; &quot;c&quot;<\/text>/);
    expect(one).toMatch(/<polyline data-role="series" data-series="x&apos;&lt;y&gt;" points="[^"]+"/);
    expect(one).not.toMatch(/<[^>]*<b>/);
  });

  it('builds the compare figure: per layer a line plot of A and B over a B − A bar plot', () => {
    const cmp = { layers: [0, 1], tokens: 2, a: [new Float32Array([1, 2]), new Float32Array([3, 4])], b: [new Float32Array([1, 3]), new Float32Array([4, 3])], diff: [new Float64Array([0, 1]), new Float64Array([1, -1])] };
    const spec = compareFigure(cmp, { a: 'the trace on screen', b: 'prompt B' });
    expect(spec.plots.map((p) => [p.kind, p.heading ?? null])).toEqual([
      ['lines', 'layer 0'],
      ['bars', null],
      ['lines', 'layer 1'],
      ['bars', null],
    ]);
    const scene = lineFigureScene(spec);
    expect(texts(scene.prims, 'legend')).toEqual(['A: the trace on screen', 'B: prompt B', 'B − A (‖Δ_t‖ of B minus A)']);
    expect(texts(scene.prims, 'heading')).toEqual(['layer 0', 'layer 1']);
    expect(scene.prims.filter((p) => p.kind === 'polyline')).toHaveLength(4);
    // Layer 1's difference: +1 above the zero line, −1 below it, equal heights.
    const zero = scene.prims.filter((p) => p.role === 'zero') as Extract<Prim, { kind: 'line' }>[];
    expect(zero).toHaveLength(1);
    const bars = scene.prims.filter((p): p is Extract<Prim, { kind: 'rect' }> => p.kind === 'rect' && p.role === 'bar').slice(-2);
    close(bars[0]!.y + bars[0]!.h, zero[0]!.y1);
    close(bars[1]!.y, zero[0]!.y1);
    close(bars[0]!.h, bars[1]!.h);
  });

  it('builds the knockout figure from the probability rows', () => {
    const spec = knockoutFigure([{ text: ' the', before: 0.6, after: 0.2 }], 3, [1]);
    expect(spec.title).toBe('Next-token probability with and without token 3 (Δ := 0 in layer 1)');
    expect(spec.x).toEqual({ kind: 'category', names: [' the'] });
    const scene = lineFigureScene(spec);
    expect(texts(scene.prims, 'x-axis')).toEqual(['␣the']);
    expect(texts(scene.prims, 'legend')).toEqual(['baseline', 'token 3 filtered']);
  });
});

describe('value ranges', () => {
  it('pads automatic ranges by 5 % (never under a bar’s 0), keeps fixed ones', () => {
    const lineRange = plotRange({ kind: 'lines', yLabel: '', series: [{ name: 'a', values: [1, NaN, 3], colour: '#000' }] });
    close(lineRange.min, 0.9);
    close(lineRange.max, 3.1);
    expect(plotRange({ kind: 'bars', yLabel: '', series: [{ name: 'a', values: [-2, 2], colour: '#000' }] })).toEqual({ min: -2.2, max: 2.2 });
    expect(plotRange({ kind: 'bars', yLabel: '', series: [{ name: 'a', values: [-4, -1], colour: '#000' }] })).toEqual({ min: -4.2, max: 0 });
    expect(plotRange({ kind: 'lines', yLabel: '', yRange: { min: 0, max: 1 }, series: [{ name: 'a', values: [5], colour: '#000' }] })).toEqual({ min: 0, max: 1 });
    expect(plotRange({ kind: 'lines', yLabel: '', series: [{ name: 'a', values: [NaN], colour: '#000' }] })).toEqual({ min: 0, max: 1 });
  });
});

describe('print colours', () => {
  it('darkens the dark theme pastels to print on white, keeps dark colours', async () => {
    const { printColour } = await import('../../renderer/src/panels/publish-lines');
    // #ffffff has luminance 1; scaled by k its luminance is lin(k)… = 0.35 at k = ((0.35^(1/2.4)) · 1.055 − 0.055) = 0.6262.
    expect(printColour('#ffffff')).toBe('#a0a0a0');
    expect(printColour('#0277BD')).toBe('#0277bd');
    expect(printColour('not a colour')).toBe('not a colour');
    // Hue kept: the channels' ratios stay (within rounding).
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(printColour('#ffd54f').slice(i, i + 2), 16));
    expect(Math.abs(g! / r! - 0xd5 / 0xff)).toBeLessThan(0.01);
    expect(Math.abs(b! / r! - 0x4f / 0xff)).toBeLessThan(0.02);
  });
});
