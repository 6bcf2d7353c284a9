/**
 * A WebGL2 heatmap of [tokens, channels] matrices (one per layer): each matrix is uploaded once as
 * an R32F texture (texel (channel, token), so the row-major trace needs no transpose), the
 * colormaps as one 256×3 RGBA8 texture, and a frame is one full-screen triangle whose fragment
 * shader looks up the cell under each pixel. Zoom and pan along tokens, the value range, log or
 * linear scale, the colormap and a highlighted token are uniforms: redrawing costs no upload.
 *
 * Pixel → cell mapping (same as chart-scale.ts cellAt2d): tokens run left to right over the view
 * [start, start + count), channels top to bottom over the channel view (all channels by default).
 */
import { COLORMAPS, colormapTable, type ColormapName } from './colormaps';
import type { TokenView } from './selection';

const VERTEX = `#version 300 es
void main() {
  // One triangle covering the viewport.
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}`;

const FRAGMENT = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
uniform sampler2D uData;      // R32F, width = channels, height = tokens
uniform sampler2D uColormaps; // RGBA8, 256 × (number of colormaps)
uniform float uColormap;      // row of uColormaps
uniform vec2 uView;           // first token shown (fractional), tokens shown
uniform vec2 uYView;          // first channel shown (fractional), channels shown
uniform vec2 uRange;          // value range, already on the chosen scale
uniform float uFloor;         // smallest value a log scale takes (log needs > 0)
uniform int uLog;
uniform vec2 uSize;           // drawing buffer, pixels
uniform int uHighlight;       // token to highlight, or -1
out vec4 outColor;
void main() {
  ivec2 dims = textureSize(uData, 0);
  vec2 p = vec2(gl_FragCoord.x, uSize.y - gl_FragCoord.y); // from the top-left corner
  int token = int(floor(uView.x + p.x / uSize.x * uView.y));
  int channel = int(floor(uYView.x + p.y / uSize.y * uYView.y));
  token = clamp(token, 0, dims.y - 1);
  channel = clamp(channel, 0, dims.x - 1);
  float v = texelFetch(uData, ivec2(channel, token), 0).r;
  float f = uLog == 1 ? log(max(v, uFloor)) : v;
  float span = uRange.y - uRange.x;
  float t = span > 0.0 ? clamp((f - uRange.x) / span, 0.0, 1.0) : 0.0;
  vec3 c = texelFetch(uColormaps, ivec2(int(round(t * 255.0)), int(uColormap)), 0).rgb;
  // The highlight lightens dark cells and darkens light ones (near-white cells of the diverging map).
  if (token == uHighlight) c = mix(c, dot(c, vec3(0.299, 0.587, 0.114)) > 0.7 ? vec3(0.0) : vec3(1.0), 0.4);
  outColor = vec4(c, 1.0);
}`;

export interface HeatmapFrame {
  /** Which uploaded matrix. */
  layer: number;
  view: TokenView;
  /** The channels shown, top to bottom (default: all of them). */
  channelView?: TokenView;
  /** Value range on the data's scale (not logged). */
  range: { min: number; max: number };
  log: boolean;
  colormap: ColormapName;
  highlightToken: number | null;
}

function compile(gl: WebGL2RenderingContext, type: number, source: string): WebGLShader {
  const shader = gl.createShader(type);
  if (!shader) throw new Error('Heatmap: cannot create a shader');
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(`Heatmap: shader does not compile: ${gl.getShaderInfoLog(shader) ?? ''}`);
  return shader;
}

export class HeatmapRenderer {
  private readonly gl: WebGL2RenderingContext;
  private readonly program: WebGLProgram;
  private readonly vao: WebGLVertexArrayObject;
  private readonly colormaps: WebGLTexture;
  private textures: (WebGLTexture | null)[] = [];
  private readonly uniforms: Record<string, WebGLUniformLocation | null>;
  tokens = 0;
  channels = 0;

  constructor(private readonly canvas: HTMLCanvasElement) {
    // preserveDrawingBuffer: screenshots and PNG export read the last frame.
    const gl = canvas.getContext('webgl2', { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error('Heatmap: WebGL2 is not available');
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(`Heatmap: program does not link: ${gl.getProgramInfoLog(program) ?? ''}`);
    this.program = program;
    this.vao = gl.createVertexArray();
    this.uniforms = Object.fromEntries(
      ['uData', 'uColormaps', 'uColormap', 'uView', 'uYView', 'uRange', 'uFloor', 'uLog', 'uSize', 'uHighlight'].map((n) => [n, gl.getUniformLocation(program, n)]),
    );
    const table = new Uint8Array(256 * 4 * COLORMAPS.length);
    COLORMAPS.forEach((name, row) => table.set(colormapTable(name), row * 256 * 4));
    this.colormaps = this.texture(gl.RGBA8, 256, COLORMAPS.length, gl.RGBA, gl.UNSIGNED_BYTE, table);
  }

  private texture(internal: number, width: number, height: number, format: number, type: number, data: ArrayBufferView): WebGLTexture {
    const gl = this.gl;
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
    gl.texImage2D(gl.TEXTURE_2D, 0, internal, width, height, 0, format, type, data);
    for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
    for (const p of [gl.TEXTURE_WRAP_S, gl.TEXTURE_WRAP_T]) gl.texParameteri(gl.TEXTURE_2D, p, gl.CLAMP_TO_EDGE);
    return texture;
  }

  /**
   * Uploads one [tokens, channels] row-major matrix per layer (replacing the previous ones); an
   * empty one (a layer of a long trace's window not fetched yet) draws as background.
   */
  setData(layers: readonly Float32Array[], tokens: number, channels: number): void {
    const gl = this.gl;
    const max = gl.getParameter(gl.MAX_TEXTURE_SIZE) as number;
    if (tokens > max || channels > max) throw new RangeError(`Heatmap: ${tokens} tokens × ${channels} channels exceed this GPU's texture size (${max})`);
    layers.forEach((data, i) => {
      if (data.length !== 0 && data.length !== tokens * channels) throw new RangeError(`Heatmap: layer ${i} has ${data.length} values, expected ${tokens} × ${channels}`);
    });
    this.disposeData();
    this.textures = layers.map((data) => (data.length === 0 ? null : this.texture(gl.R32F, channels, tokens, gl.RED, gl.FLOAT, data)));
    this.tokens = tokens;
    this.channels = channels;
  }

  /** Sizes the drawing buffer to the canvas's CSS size × devicePixelRatio; true when it changed. */
  resize(): boolean {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width === width && this.canvas.height === height) return false;
    this.canvas.width = width;
    this.canvas.height = height;
    return true;
  }

  draw(frame: HeatmapFrame): void {
    const gl = this.gl;
    const data = this.textures[frame.layer];
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0, 0, 0, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    if (!data) return;
    const u = this.uniforms;
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, data);
    gl.uniform1i(u.uData ?? null, 0);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, this.colormaps);
    gl.uniform1i(u.uColormaps ?? null, 1);
    gl.uniform1f(u.uColormap ?? null, COLORMAPS.indexOf(frame.colormap));
    gl.uniform2f(u.uView ?? null, frame.view.start, frame.view.count);
    const yView = frame.channelView ?? { start: 0, count: this.channels };
    gl.uniform2f(u.uYView ?? null, yView.start, yView.count);
    const floor = frame.log ? Math.max(frame.range.min, Number.MIN_VALUE) : frame.range.min;
    const scale = (x: number) => (frame.log ? Math.log(Math.max(x, floor)) : x);
    gl.uniform2f(u.uRange ?? null, scale(frame.range.min), scale(frame.range.max));
    gl.uniform1f(u.uFloor ?? null, floor);
    gl.uniform1i(u.uLog ?? null, frame.log ? 1 : 0);
    gl.uniform2f(u.uSize ?? null, this.canvas.width, this.canvas.height);
    gl.uniform1i(u.uHighlight ?? null, frame.highlightToken ?? -1);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
  }

  private disposeData(): void {
    for (const t of this.textures) if (t) this.gl.deleteTexture(t);
    this.textures = [];
  }

  destroy(): void {
    this.disposeData();
    this.gl.deleteTexture(this.colormaps);
    this.gl.deleteProgram(this.program);
    this.gl.deleteVertexArray(this.vao);
  }
}
