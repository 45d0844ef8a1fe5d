import type { PatternJob } from './model.ts';

/**
 * When a discovery job's worker is lost, and what then. A worker runs as an asynchronous
 * invocation; AWS Lambda ends it at the function's timeout, and on a function error (the
 * timeout included) invokes the same event again, twice at most, one minute and then two
 * minutes later ("How Lambda handles errors and retries with asynchronous invocation",
 * Lambda developer guide). An event no worker has run is dropped after six hours (its
 * maximum event age). The rules below follow those semantics; locally serverless-offline
 * does not retry, so a lost job is failed when the retries' time has passed.
 */
export interface JobLimits {
  /** How long a worker may run where its invocation does not say (the function's timeout). */
  workerTimeLimitMs: number;
  /** Workers that may take one job: Lambda's first attempt and its two retries. */
  maxAttempts: number;
  /** After a worker's end, how long a retry may take to come (1 min, then 2 min, plus slack). */
  retryWindowMs: number;
  /** A job no worker started by then never will be (the event's maximum age, plus slack). */
  maxPendingMs: number;
}

export const DEFAULT_JOB_LIMITS: JobLimits = {
  workerTimeLimitMs: 900_000,
  maxAttempts: 3,
  retryWindowMs: 5 * 60_000,
  maxPendingMs: 6 * 3_600_000 + 10 * 60_000,
};

/** Whether a worker invoked for the job may take it now: it is queued, or its worker is gone. */
export function mayTakeJob(job: PatternJob, nowMs: number, limits: JobLimits): boolean {
  if (job.status === 'pending') return true;
  if (job.status !== 'running' || job.deadline_at === null) return false;
  // Before its deadline the worker that has it may still be running.
  return nowMs > Date.parse(job.deadline_at) && job.attempts < limits.maxAttempts;
}

/** Why the job is lost (no worker has it and none will come), or null while it is not. */
export function lostJob(
  job: PatternJob,
  nowMs: number,
  limits: JobLimits,
): { code: string; message: string } | null {
  if (job.status === 'pending') {
    if (nowMs <= Date.parse(job.created_at) + limits.maxPendingMs) return null;
    return {
      code: 'discovery_lost',
      message: `No worker started the discovery within ${Math.round(limits.maxPendingMs / 3_600_000)} hours; start it again`,
    };
  }
  if (job.status !== 'running' || job.deadline_at === null) return null;
  const retryMayCome = job.attempts < limits.maxAttempts;
  const endMs = Date.parse(job.deadline_at) + (retryMayCome ? limits.retryWindowMs : 0);
  if (nowMs <= endMs) return null;
  return {
    code: 'discovery_lost',
    message: `The discovery stopped before it finished (its worker ran out of time or memory, or failed; ${job.attempts} ${job.attempts === 1 ? 'attempt' : 'attempts'}); start it again`,
  };
}
