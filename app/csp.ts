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

/** The same policy for a `<meta>` tag, which cannot carry `frame-ancestors` (headers only). */
export const CONTENT_SECURITY_POLICY_META = CONTENT_SECURITY_POLICY.split('; ')
  .filter((d) => !d.startsWith('frame-ancestors'))
  .join('; ');
