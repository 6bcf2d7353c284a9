import { useEffect, useState, type RefObject } from 'react';

/** The element's client size as "WxH", updated when it changes (a dependency for redrawing a canvas at its size). */
export function useElementSize(ref: RefObject<HTMLElement | null>): string {
  const [size, setSize] = useState('');
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(() => setSize(`${el.clientWidth}x${el.clientHeight}`));
    observer.observe(el);
    return () => observer.disconnect();
  }, [ref]);
  return size;
}
