import { describe, expect, it } from 'vitest';
import { RecentMap } from '../common/recent-map.js';

describe('RecentMap', () => {
  it('never holds more than its maximum', () => {
    for (const max of [0, 1, 2, 3, 10, 101]) {
      const m = new RecentMap<number, number>(max);
      for (let i = 0; i < 1000; i++) {
        m.set(i, i);
        expect(m.size).toBeLessThanOrEqual(max);
      }
    }
  });

  it('keeps the most recent half of its maximum at least', () => {
    const m = new RecentMap<string, number>(100);
    for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
    for (let i = 950; i < 1000; i++) expect(m.get(`k${i}`)).toBe(i);
    expect(m.get('k0')).toBeUndefined();
  });

  it('keeps a key that is read often, however many others pass through', () => {
    const m = new RecentMap<string, number>(10);
    m.set('hot', 1);
    for (let i = 0; i < 500; i++) {
      m.set(`cold${i}`, i);
      expect(m.get('hot')).toBe(1);
    }
  });

  it('forgets everything on clear', () => {
    const m = new RecentMap<string, number>(10);
    m.set('a', 1);
    m.clear();
    expect(m.get('a')).toBeUndefined();
    expect(m.size).toBe(0);
  });
});
