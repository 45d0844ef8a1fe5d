import { describe, expect, it } from 'vitest';
import {
  DEFAULT_JOB_LIMITS,
  lostJob,
  mayTakeJob,
} from '../../shared/patterns/domain/job-lifecycle.ts';
import type { PatternJob } from '../../shared/patterns/domain/model.ts';

/**
 * When a discovery's worker counts as lost, on an injected clock, with AWS Lambda's documented
 * handling of asynchronous invocations ("How Lambda handles errors and retries with
 * asynchronous invocation": two retries, one and two minutes after a failure; events dropped
 * after six hours) as the limits.
 */
const T0 = Date.parse('2026-12-07T08:00:00Z');
const MINUTE = 60_000;

function job(overrides: Partial<PatternJob>): PatternJob {
  return {
    job_id: 1,
    device_id: 1,
    status: 'pending',
    request: { entity_ids: null, from: null, to: null },
    result: null,
    error: null,
    attempts: 0,
    created_at: new Date(T0).toISOString(),
    started_at: null,
    deadline_at: null,
    finished_at: null,
    ...overrides,
  };
}

const running = (attempts: number) =>
  job({
    status: 'running',
    attempts,
    started_at: new Date(T0).toISOString(),
    deadline_at: new Date(T0 + 15 * MINUTE).toISOString(),
  });

describe('a discovery job whose worker is lost', () => {
  it('a queued job is taken by any worker; a running one only after its deadline, 3 attempts at most', () => {
    expect(mayTakeJob(job({}), T0, DEFAULT_JOB_LIMITS)).toBe(true);
    expect(mayTakeJob(running(1), T0 + 15 * MINUTE, DEFAULT_JOB_LIMITS)).toBe(false);
    expect(mayTakeJob(running(1), T0 + 15 * MINUTE + 1, DEFAULT_JOB_LIMITS)).toBe(true);
    expect(mayTakeJob(running(2), T0 + 16 * MINUTE, DEFAULT_JOB_LIMITS)).toBe(true);
    expect(mayTakeJob(running(3), T0 + 16 * MINUTE, DEFAULT_JOB_LIMITS)).toBe(false);
    for (const status of ['done', 'failed'] as const) {
      expect(mayTakeJob(job({ status }), T0 + 24 * 60 * MINUTE, DEFAULT_JOB_LIMITS)).toBe(false);
    }
  });

  it('a running job is lost once its deadline and the retries it may still get have passed', () => {
    // Attempts left: a retry may come up to 5 minutes after the deadline.
    expect(lostJob(running(1), T0 + 20 * MINUTE, DEFAULT_JOB_LIMITS)).toBeNull();
    expect(lostJob(running(2), T0 + 20 * MINUTE + 1, DEFAULT_JOB_LIMITS)).toMatchObject({
      code: 'discovery_lost',
      message: expect.stringContaining('2 attempts'),
    });
    // The last attempt: no retry will come, so it is lost as soon as its worker has ended.
    expect(lostJob(running(3), T0 + 15 * MINUTE, DEFAULT_JOB_LIMITS)).toBeNull();
    expect(lostJob(running(3), T0 + 15 * MINUTE + 1, DEFAULT_JOB_LIMITS)?.code).toBe(
      'discovery_lost',
    );
  });

  it('a queued job is lost when no worker started it within the event age, and a finished one never', () => {
    const age = DEFAULT_JOB_LIMITS.maxPendingMs;
    expect(lostJob(job({}), T0 + age, DEFAULT_JOB_LIMITS)).toBeNull();
    expect(lostJob(job({}), T0 + age + 1, DEFAULT_JOB_LIMITS)?.message).toMatch(
      /No worker started the discovery within 6 hours/,
    );
    expect(lostJob(job({ status: 'done' }), T0 + 10 * age, DEFAULT_JOB_LIMITS)).toBeNull();
  });
});
