/**
 * Context novelty: how much of what the entity is doing now has never been seen in this
 * order before. Readings are quantised into a few levels (each level a set of binary
 * "facts"); the detector remembers which facts followed which (a context is a left set of
 * facts, the previous reading's facts plus the contexts it recognised, and a right set, the
 * current reading's facts), builds longer contexts from the intersections of those it
 * knows, and scores each reading by the share of expected contexts that did not happen plus
 * the share of contexts that had to be newly learnt. This is the idea of the Contextual
 * Anomaly Detector (CAD OSE, M. Smirnov, NAB 2016), written from its description for a
 * streaming, JSON-persisted state: the quantisation range is fixed from the entity's first
 * readings (online; CAD OSE reads the whole file's range up front), values outside it get
 * one fact each side, and the memory stops growing at a cap so a reading's cost stays bounded.
 *
 * After a reading scores at or above `alarmScore`, the layer stays silent for `rest` readings
 * (one alarm per incident, as in CAD OSE).
 */

export interface ContextConfig {
  /** Readings whose range fixes the quantisation; the layer scores 0 until then. */
  learnAfter: number;
  /** Binary digits per level: 2^bits levels across the range. */
  bits: number;
  /** Longest left semi-context built from intersections. */
  maxLeftFacts: number;
  /** Recognised contexts fed forward as facts of the next left set. */
  maxActive: number;
  /** Memory cap: beyond it no context is learnt (scores keep using what is known). */
  maxContexts: number;
  /** A raw score at or above this silences the layer for `rest` readings. */
  alarmScore: number;
  rest: number;
}

export const DEFAULT_CONTEXT_CONFIG: ContextConfig = {
  learnAfter: 150,
  bits: 3,
  maxLeftFacts: 7,
  maxActive: 15,
  maxContexts: 20_000,
  alarmScore: 0.75,
  rest: 120,
};

export interface ContextState {
  /** Readings seen. */
  count: number;
  /** Quantisation range: the range of the first `learnAfter` readings. */
  min: number;
  max: number;
  /** Facts of each left and right semi-context, by id. */
  lefts: number[][];
  rights: number[][];
  /** Contexts as [left id, right id, times recognised, 1 if it ever followed directly]. */
  contexts: Array<[number, number, number, 0 | 1]>;
  /** The left set the next reading is judged against. */
  leftGroup: number[];
  /** Raw scores of the last `rest` readings, oldest first. */
  recent: number[];
}

export function newContextState(): ContextState {
  return {
    count: 0,
    min: 0,
    max: 0,
    lefts: [],
    rights: [],
    contexts: [],
    leftGroup: [],
    recent: [],
  };
}

/** Facts beyond the 2^bits levels: below and above the range. */
const BELOW = 1_000_000;
const ABOVE = 1_000_001;
/** Context ids become facts of the next left set above every value fact. */
const CONTEXT_FACT = 2 ** 31;

const key = (facts: readonly number[]) => facts.join(',');

/**
 * Look-ups derived from the state (semi-context ids by facts, the semi-contexts holding each
 * fact, how many facts each left semi-context shares with the current left set): rebuilt
 * when a state is restored, never persisted.
 */
class ContextIndex {
  readonly leftIds = new Map<string, number>();
  readonly rightIds = new Map<string, number>();
  readonly leftsByFact = new Map<number, number[]>();
  readonly rightsByFact = new Map<number, number[]>();
  /** Contexts of each left semi-context: right id -> context id. */
  readonly leftContexts: Array<Map<number, number>> = [];
  /** Facts each left semi-context shares with the current left set, and which share any. */
  leftHits: number[] = [];
  crossed: number[] = [];

  constructor(state: ContextState) {
    state.lefts.forEach((facts, id) => this.indexLeft(facts, id));
    state.rights.forEach((facts, id) => this.indexRight(facts, id));
    state.contexts.forEach(([left, right], id) => this.leftContexts[left]?.set(right, id));
    this.cross(state.leftGroup);
  }

  indexLeft(facts: number[], id: number): void {
    this.leftIds.set(key(facts), id);
    this.leftContexts[id] = new Map();
    this.leftHits[id] = 0;
    for (const f of facts) push(this.leftsByFact, f, id);
  }

  indexRight(facts: number[], id: number): void {
    this.rightIds.set(key(facts), id);
    for (const f of facts) push(this.rightsByFact, f, id);
  }

  cross(leftGroup: readonly number[]): void {
    for (const id of this.crossed) this.leftHits[id] = 0;
    this.crossed = [];
    for (const f of leftGroup) {
      for (const id of this.leftsByFact.get(f) ?? []) {
        if (this.leftHits[id] === 0) this.crossed.push(id);
        this.leftHits[id] = (this.leftHits[id] as number) + 1;
      }
    }
  }
}

function push(map: Map<number, number[]>, k: number, v: number): void {
  const list = map.get(k);
  if (list) list.push(v);
  else map.set(k, [v]);
}

export class ContextNovelty {
  #index: ContextIndex;

  constructor(
    readonly state: ContextState,
    private readonly config: ContextConfig,
  ) {
    this.#index = new ContextIndex(state);
  }

  /** The reading's score in [0, 1] (0 while learning the range and while resting). */
  score(value: number): number {
    const s = this.state;
    s.count += 1;
    if (s.count <= this.config.learnAfter) {
      if (s.count === 1) {
        s.min = value;
        s.max = value;
      } else {
        s.min = Math.min(s.min, value);
        s.max = Math.max(s.max, value);
      }
      return 0;
    }
    const raw = this.#step(this.#facts(value));
    let resting = false;
    for (const r of s.recent) if (r >= this.config.alarmScore) resting = true;
    s.recent.push(raw);
    while (s.recent.length > this.config.rest) s.recent.shift();
    return resting ? 0 : raw;
  }

  #facts(value: number): number[] {
    const s = this.state;
    const top = 2 ** this.config.bits - 1;
    const width = s.max - s.min;
    const level = Math.floor(((value - s.min) / (width > 0 ? width : top)) * top);
    if (level < 0) return [BELOW];
    if (level > top) return [ABOVE];
    const facts: number[] = [];
    for (let bit = 0; bit < this.config.bits; bit++) facts.push(bit * 2 + ((level >> bit) & 1));
    return facts;
  }

  /** Finds or learns the context (left, right); returns its id and whether it is new. */
  #learn(left: number[], right: number[], direct: boolean): { id: number; added: boolean } {
    const s = this.state;
    const index = this.#index;
    let leftId = index.leftIds.get(key(left));
    let rightId = index.rightIds.get(key(right));
    const existing =
      leftId !== undefined && rightId !== undefined
        ? index.leftContexts[leftId]?.get(rightId)
        : undefined;
    if (existing !== undefined) {
      if (direct) (s.contexts[existing] as [number, number, number, 0 | 1])[3] = 1;
      return { id: existing, added: false };
    }
    if (s.contexts.length >= this.config.maxContexts) return { id: -1, added: false };
    if (leftId === undefined) {
      leftId = s.lefts.length;
      s.lefts.push(left);
      index.indexLeft(left, leftId);
    }
    if (rightId === undefined) {
      rightId = s.rights.length;
      s.rights.push(right);
      index.indexRight(right, rightId);
    }
    const id = s.contexts.length;
    s.contexts.push([leftId, rightId, 0, direct ? 1 : 0]);
    (index.leftContexts[leftId] as Map<number, number>).set(rightId, id);
    return { id, added: true };
  }

  #step(facts: number[]): number {
    const s = this.state;
    const index = this.#index;
    const candidates = new Set<string>();
    let direct: { id: number; added: boolean } = { id: -1, added: false };
    const previous = s.leftGroup;
    if (previous.length > 0) {
      candidates.add(`${key(previous)}|${key(facts)}`);
      direct = this.#learn(previous, facts, true);
    }
    // How many facts of each right semi-context the current reading has.
    const rightHits = new Map<number, number>();
    for (const f of facts) {
      for (const id of index.rightsByFact.get(f) ?? []) rightHits.set(id, (rightHits.get(id) ?? 0) + 1);
    }
    const learning = direct.added;
    const shared = (mine: readonly number[], of: readonly number[]) => mine.filter((f) => of.includes(f));
    const active: number[] = [];
    let expected = 0;
    const proposals: Array<[number[], number[]]> = [];
    for (const leftId of index.crossed) {
      const leftFacts = s.lefts[leftId] as number[];
      const leftHits = index.leftHits[leftId] as number;
      const leftFull = leftHits === leftFacts.length;
      // A partly matching left semi-context only matters for learning new contexts.
      if (!leftFull && !(learning && leftHits <= this.config.maxLeftFacts)) continue;
      for (const [rightId, contextId] of index.leftContexts[leftId] as Map<number, number>) {
        if (learning && contextId === direct.id) continue;
        if (leftFull) expected += 1;
        const hits = rightHits.get(rightId);
        if (hits === undefined) continue;
        const context = s.contexts[contextId] as [number, number, number, 0 | 1];
        const rightFacts = s.rights[rightId] as number[];
        if (leftFull && hits === rightFacts.length) {
          context[2] += 1;
          active.push(contextId);
        } else if (context[3] === 1 && learning && leftHits <= this.config.maxLeftFacts) {
          proposals.push([shared(leftFacts, previous), shared(rightFacts, facts)]);
        }
      }
    }
    for (const [left, right] of proposals) candidates.add(`${key(left)}|${key(right)}`);
    const unexplained = expected > 0 ? 1 - active.length / expected : 1;

    // The most often recognised contexts become facts of the next left set.
    active.sort((a, b) => {
      const ca = (s.contexts[a] as [number, number, number, 0 | 1])[2];
      const cb = (s.contexts[b] as [number, number, number, 0 | 1])[2];
      return ca - cb || a - b;
    });
    const next = new Set(facts);
    for (const id of active.slice(-this.config.maxActive)) next.add(CONTEXT_FACT + id);
    s.leftGroup = [...next].sort((a, b) => a - b);
    let learnt = learning ? 1 : 0;
    for (const [left, right] of proposals) if (this.#learn(left, right, false).added) learnt += 1;
    index.cross(s.leftGroup);
    const novel = learning && candidates.size > 0 ? learnt / candidates.size : 0;
    return (unexplained + novel) / 2;
  }
}
