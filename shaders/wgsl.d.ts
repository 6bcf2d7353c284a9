// WGSL sources are real files, imported as text (`?raw`) by the Vite builds and by Vitest.
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
