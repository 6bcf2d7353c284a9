/**
 * Publication figures (renderer/src/panels/publish.ts): the SVG is well-formed XML (checked by a
 * small parser written here, not by the builder's own code), has the title, both axes with their
 * labels and ticks, and a colour bar with values; nothing else (no hover stripe); hostile token
 * texts are escaped; the ×2 figure is twice the size with the same layout; the cell image has one
 * pixel per shown cell, coloured as the colormap's entry for the normalised value.
 */
import { describe, expect, it } from 'vitest';
import { cellsRgba, figureLayout, figureSvg, heatmapFigure, wholeCells, type FigureSpec } from '../../renderer/src/panels/publish';
import { colormapTable } from '../../renderer/src/panels/colormaps';

/** A minimal XML well-formedness check: balanced, properly nested tags; quoted, unique attributes; escaped text. */
function checkXml(xml: string): { root: string; elements: number } {
  const stack: string[] = [];
  let root = '';
  let elements = 0;
  let i = 0;
  const text = (s: string) => {
    if (/<|&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(s)) throw new Error(`unescaped text: ${s.slice(0, 40)}`);
    for (const c of s) {
      const code = c.charCodeAt(0);
      if (code < 0x20 && code !== 0x9 && code !== 0xa && code !== 0xd) throw new Error('control character');
    }
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      text(xml.slice(i));
      break;
    }
    text(xml.slice(i, lt));
    const gt = xml.indexOf('>', lt);
    if (gt < 0) throw new Error('unclosed tag');
    const tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([A-Za-z_][\w:.-]*)([\s\S]*)$/.exec(body);
    if (!m) throw new Error(`bad tag <${tag}>`);
    const attrs = m[2]!;
    const seen = new Set<string>();
    const rest = attrs.replace(/\s+([A-Za-z_][\w:.-]*)="([^"<]*)"/g, (_, name: string, value: string) => {
      if (seen.has(name)) throw new Error(`duplicate attribute ${name}`);
      seen.add(name);
      text(value);
      return '';
    });
    if (rest.trim() !== '') throw new Error(`bad attributes in <${m[1]}>: ${rest}`);
    if (stack.length === 0) {
      if (root) throw new Error('two roots');
      root = m[1]!;
    }
    elements++;
    if (!selfClosing) stack.push(m[1]!);
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

const T = 64;
const N = 16;
const data = Float32Array.from({ length: T * N }, (_, k) => Math.sin(k / 7) * 3);
const spec = (over: Partial<FigureSpec> = {}): FigureSpec => ({
  title: 'B of layer 1 <test> & "quotes"',
  width: 900,
  height: 520,
  view: { x: { start: 0, count: T }, y: { start: 0, count: N } },
  tokens: T,
  channels: N,
  texts: Array.from({ length: T }, (_, i) => (i === 3 ? '<&\u0001>' : `w${i}`)),
  xLabel: 'token',
  yLabel: 'state n',
  range: { min: -3, max: 3 },
  log: false,
  colormap: 'diverging',
  colorbarLabel: 'B',
  ...over,
});

describe('the checker itself', () => {
  it('rejects broken XML', () => {
    expect(() => checkXml('<a><b></a></b>')).toThrow();
    expect(() => checkXml('<a x="1" x="2"/>')).toThrow();
    expect(() => checkXml('<a>1 < 2</a>')).toThrow();
    expect(() => checkXml('<a>&nbsp;</a>')).toThrow();
    expect(checkXml('<a><b c="d"/>x &amp; y</a>')).toEqual({ root: 'a', elements: 2 });
  });
});

describe('figureSvg', () => {
  const fig = heatmapFigure(spec());
  const svg = figureSvg(fig, 'data:image/png;base64,AAAA', 2);
  it('is well-formed SVG', () => {
    expect(checkXml(svg).root).toBe('svg');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  });
  it('has the title, axes with labels and ticks, a colour bar with values, and the cell image', () => {
    expect(svg).toContain('<text data-role="title"');
    expect(svg).toContain('B of layer 1 &lt;test&gt; &amp; &quot;quotes&quot;');
    expect(svg).toMatch(/<text data-role="x-label"[^>]*>token<\/text>/);
    expect(svg).toMatch(/<text data-role="y-label"[^>]*>state n<\/text>/);
    expect(svg).toMatch(/<text data-role="colorbar-label"[^>]*>B<\/text>/);
    const group = (role: string) => new RegExp(`<g data-role="${role}"[\\s\\S]*?</g>`).exec(svg)?.[0] ?? '';
    // x: token indices at full view (64 tokens over ~730 px: too narrow for text).
    const xLabels = [...group('x-axis').matchAll(/<text x="[^"]+" y="[^"]+" text-anchor="middle" stroke="none">([^<]*)<\/text>/g)].map((m) => m[1]);
    expect(xLabels.length).toBeGreaterThanOrEqual(2);
    for (const l of xLabels) expect(Number.isInteger(Number(l))).toBe(true);
    const yLabels = [...group('y-axis').matchAll(/text-anchor="end" stroke="none">([^<]*)<\/text>/g)].map((m) => Number(m[1]));
    expect(yLabels.length).toBeGreaterThanOrEqual(2);
    // The colour bar of a symmetric range shows 0 and values of both signs.
    const bar = group('colorbar');
    expect(bar).toContain('fill="url(#colorbar-gradient)"');
    const barLabels = [...bar.matchAll(/<text x="[^"]+" y="[^"]+" stroke="none">([^<]*)<\/text>/g)].map((m) => Number(m[1]));
    expect(barLabels).toContain(0);
    expect(Math.min(...barLabels)).toBeLessThan(0);
    expect(Math.max(...barLabels)).toBeGreaterThan(0);
    expect(svg.match(/<stop /g)?.length).toBe(17);
    expect(group('plot')).toMatch(/<image [^>]*href="data:image\/png;base64,AAAA"/);
    // Only the figure's parts: no hover stripe or cursor.
    expect(svg.match(/<g data-role="/g)?.length).toBe(4);
  });
  it('×2 doubles the size, keeps the layout', () => {
    const L = figureLayout(fig.width, fig.height);
    expect(svg).toContain(`width="${L.width * 2}" height="${L.height * 2}" viewBox="0 0 ${L.width} ${L.height}"`);
    expect(figureSvg(fig, 'x', 1)).toContain(`width="${L.width}" height="${L.height}"`);
  });
  it('shows escaped token text when zoomed in', () => {
    const zoomed = figureSvg(heatmapFigure(spec({ view: { x: { start: 0, count: 8 }, y: { start: 0, count: N } } })), 'x');
    expect(checkXml(zoomed).root).toBe('svg');
    expect(zoomed).toContain('>w0<');
    expect(zoomed).toContain('&lt;&amp;�&gt;');
  });
  it('labels named rows (the layer overview)', () => {
    const names = ['layer 0', 'layer 1', 'layer 2'];
    const s = figureSvg(heatmapFigure(spec({ channels: 3, view: { x: { start: 0, count: T }, y: { start: 0, count: 3 } }, yNames: names, yLabel: 'layer' })), 'x');
    for (const n of names) expect(s).toContain(`>${n}</text>`);
  });
});

describe('cellsRgba', () => {
  it('one pixel per shown cell, coloured like the heatmap', () => {
    const view = { x: { start: 10, count: 5 }, y: { start: 4, count: 3 } };
    const img = cellsRgba(data, N, view, { min: -3, max: 3 }, false, 'viridis');
    expect([img.width, img.height, img.rgba.length]).toEqual([5, 3, 60]);
    const table = colormapTable('viridis');
    for (const [x, y] of [
      [0, 0],
      [4, 2],
      [2, 1],
    ] as const) {
      const v = data[(10 + x) * N + (4 + y)]!;
      const k = Math.round(((v + 3) / 6) * 255) * 4;
      expect([...img.rgba.subarray((y * 5 + x) * 4, (y * 5 + x) * 4 + 4)]).toEqual([table[k], table[k + 1], table[k + 2], 255]);
    }
  });
  it('wholeCells widens a fractional view to whole cells', () => {
    expect(wholeCells({ start: 10.4, count: 5.2 }, 64)).toEqual({ start: 10, count: 6 });
    expect(wholeCells({ start: 0, count: 64 }, 64)).toEqual({ start: 0, count: 64 });
  });
});
