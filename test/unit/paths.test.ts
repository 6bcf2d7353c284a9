import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveInside } from '../../main/paths';

describe('resolveInside (app:// file resolution)', () => {
  const root = path.resolve('/srv/renderer');
  it('maps URL paths to files inside the root', () => {
    expect(resolveInside(root, '/index.html')).toBe(path.join(root, 'index.html'));
    expect(resolveInside(root, '/assets/a%20b.js')).toBe(path.join(root, 'assets', 'a b.js'));
  });
  it('never leaves the root', () => {
    for (const bad of ['/../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/assets/../../x', '/%00', '/%E0%A4%A']) {
      const resolved = resolveInside(root, bad);
      expect(resolved === null || resolved.startsWith(root + path.sep)).toBe(true);
    }
    expect(resolveInside(root, '/%E0%A4%A')).toBeNull();
    expect(resolveInside(root, '/a%00b')).toBeNull();
  });
});
