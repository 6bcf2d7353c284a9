/**
 * The Content-Security-Policy of the studio's pages, one definition for the desktop app (sent
 * by main with every page) and the web build (a meta tag). Scripts and workers only from the
 * app itself; model files from `model:` (desktop) or the same origin (web).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self' model: blob:",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Where web mode's "Get models" fetches from (renderer/src/hub/web-hub.ts): the Hub and the hosts
 * its `resolve` redirects to. The desktop renderer never does (main downloads): main's header
 * policy, which also applies there and is the stricter one, leaves them out.
 */
export const HUB_CONNECT_SOURCES = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];

/** The policy for a `<meta>` tag (web mode), which cannot carry `frame-ancestors` (headers only); it may reach the Hub. */
export const CONTENT_SECURITY_POLICY_META = CONTENT_SECURITY_POLICY.split('; ')
  .filter((d) => !d.startsWith('frame-ancestors'))
  .map((d) => (d.startsWith('connect-src ') ? `${d} ${HUB_CONNECT_SOURCES.join(' ')}` : d))
  .join('; ');
