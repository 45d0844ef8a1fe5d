import { describe, expect, it } from 'vitest';
import {
  ContextNovelty,
  type ContextConfig,
  DEFAULT_CONTEXT_CONFIG,
  newContextState,
} from '../../shared/ml/domain/context-novelty.ts';

const config: ContextConfig = { ...DEFAULT_CONTEXT_CONFIG, learnAfter: 8, rest: 5 };

/** A repeating pattern across the whole range: 0, 2, 4, 6, 4, 2, ... */
const pattern = (i: number) => [0, 2, 4, 6, 4, 2][i % 6] as number;

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('context novelty', () => {
  it('learns a repeating sequence and scores a never-seen transition', () => {
    const layer = new ContextNovelty(newContextState(), config);
    const scores: number[] = [];
    for (let i = 0; i < 600; i++) scores.push(layer.score(pattern(i)));
    // Scores 0 while the range is learnt, then novelty fades as the sequence repeats.
    expect(scores.slice(0, config.learnAfter).every((s) => s === 0)).toBe(true);
    expect(Math.max(...scores.slice(500))).toBeLessThan(0.25);
    // 0 -> 6 never happened: a transition the layer cannot explain.
    expect(layer.score(6)).toBeGreaterThanOrEqual(config.alarmScore);
  });

  it('stays silent for its rest period after an alarm', () => {
    const layer = new ContextNovelty(newContextState(), config);
    for (let i = 0; i < 600; i++) layer.score(pattern(i));
    expect(layer.score(6)).toBeGreaterThanOrEqual(config.alarmScore);
    const after = Array.from({ length: config.rest }, () => layer.score(-40));
    expect(after).toEqual(Array(config.rest).fill(0));
  });

  it('continues identically from its JSON state', () => {
    const next = random(3);
    const values = Array.from({ length: 900 }, (_, i) => pattern(i) + (next() < 0.05 ? 3 : 0));
    const whole = new ContextNovelty(newContextState(), config);
    const expected = values.map((v) => whole.score(v));
    const first = new ContextNovelty(newContextState(), config);
    const scores = values.slice(0, 400).map((v) => first.score(v));
    const restored = new ContextNovelty(JSON.parse(JSON.stringify(first.state)), config);
    scores.push(...values.slice(400).map((v) => restored.score(v)));
    expect(scores).toEqual(expected);
  });

  it('stops learning at its memory cap, so a reading costs a bounded amount', () => {
    const next = random(7);
    const capped = { ...config, maxContexts: 300 };
    const layer = new ContextNovelty(newContextState(), capped);
    for (let i = 0; i < 3000; i++) {
      const score = layer.score(next() * 100);
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    }
    expect(layer.state.contexts.length).toBe(300);
  });
});
