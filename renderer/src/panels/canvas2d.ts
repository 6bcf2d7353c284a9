/**
 * A 2-D canvas sized to its CSS box at the device pixel ratio, transformed to CSS pixels and
 * cleared to the panels' background: what the compare and knockout charts draw on.
 */
export function prepareCanvas2d(canvas: HTMLCanvasElement, background = '#11141a'): { g: CanvasRenderingContext2D; width: number; height: number } | null {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const g = canvas.getContext('2d');
  if (!g) return null;
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.fillStyle = background;
  g.fillRect(0, 0, width / ratio, height / ratio);
  return { g, width: width / ratio, height: height / ratio };
}
