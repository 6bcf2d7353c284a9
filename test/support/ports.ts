/** Ports for the e2e preview server (test/support/web-app.ts); no imports, so unit tests can load it. */

/**
 * Ports Chromium refuses to load from (net::ERR_UNSAFE_PORT; its kRestrictedPorts above 1023):
 * a random port in 5060–5061 (SIP) failed a whole test file once.
 */
export const CHROMIUM_UNSAFE_PORTS = new Set([1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);

/** A port to try for the preview server: 4400–5399 (vite moves up from a busy one), none Chromium refuses. */
export function previewPort(random: () => number = Math.random): number {
  for (;;) {
    const port = 4400 + Math.floor(random() * 1000);
    if (!CHROMIUM_UNSAFE_PORTS.has(port)) return port;
  }
}
