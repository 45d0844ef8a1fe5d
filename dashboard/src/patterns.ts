import type { Api } from './api.ts';
import type { components } from './api-types.ts';

/** Pattern recognition's answers, named from the generated API types. */
type Schemas = components['schemas'];
export type Pattern = Schemas['Pattern'];
export type PatternJob = Schemas['PatternJob'];
export type CurrentPattern = NonNullable<Schemas['CurrentPattern']>;

export interface PatternSegment {
  from: string;
  to: string;
  pattern_id: number | null;
  label: string | null;
  novel: boolean;
}

/** A pattern's colour on the charts (by its place in the list); novel windows are red. */
const PALETTE = [
  '#1b7f5b',
  '#6a4fb3',
  '#b26a00',
  '#1769aa',
  '#8a5a44',
  '#00838f',
  '#7b7f1b',
  '#ad1457',
];
export const NOVEL_COLOUR = '#c62828';

export function patternColour(patterns: Pattern[], patternId: number | null): string {
  if (patternId === null) return NOVEL_COLOUR;
  const index = patterns.findIndex((p) => p.pattern_id === patternId);
  return PALETTE[Math.max(index, 0) % PALETTE.length] as string;
}

/** What users read for a pattern: its name, else a number and its levels. */
export function patternName(patterns: Pattern[], patternId: number | null): string {
  if (patternId === null) return 'Novel (never seen)';
  const pattern = patterns.find((p) => p.pattern_id === patternId);
  if (!pattern) return 'Unknown pattern';
  return pattern.label ?? `Pattern ${patterns.indexOf(pattern) + 1}`;
}

export function patterns(api: Api, id: number) {
  return api.call('get', '/api/devices/{id}/patterns', { params: { id: String(id) } });
}

export function discoverPatterns(api: Api, id: number) {
  return api.call('post', '/api/devices/{id}/patterns/discover', {
    params: { id: String(id) },
    body: {},
  });
}

export function patternJob(api: Api, id: number, jobId: number) {
  return api.call('get', '/api/devices/{id}/patterns/jobs/{job_id}', {
    params: { id: String(id), job_id: String(jobId) },
  });
}

export function labelPattern(api: Api, id: number, patternId: number, label: string | null) {
  return api.call('patch', '/api/devices/{id}/patterns/{pattern_id}', {
    params: { id: String(id), pattern_id: String(patternId) },
    body: { label },
  });
}

export async function patternTimeline(
  api: Api,
  id: number,
  from: Date,
  to: Date,
): Promise<PatternSegment[]> {
  const answer = await api.call('get', '/api/devices/{id}/patterns/timeline', {
    params: { id: String(id) },
    query: { from: from.toISOString(), to: to.toISOString() },
  });
  return answer.segments;
}
