import type { ScoringPassSummary } from '../../shared/anomalies/domain/scoring-pass.ts';

/** More passes than this without catching up is a pass that does not progress. */
const MAX_PASSES = 30;

/**
 * Runs the scheduled anomaly scoring pass in-process (the test's environment must be set
 * first), pass after pass until it reports nothing left: what the schedule does, without
 * waiting for it.
 */
export async function scoreAnomalies(): Promise<ScoringPassSummary> {
  const { anomalyScoringPass } = await import('../../shared/anomalies/scoring-composition.ts');
  return untilCaughtUp(() => anomalyScoringPass().run({ budgetMs: 10 * 60_000 }));
}

/**
 * Invokes a running local stack's scoring function (as its schedule does), until it reports
 * nothing left.
 */
export function scoreAnomaliesOnStack(stack: {
  details(): Promise<{ lambdaEndpoint: string }>;
}): Promise<ScoringPassSummary> {
  return untilCaughtUp(async () => {
    const { lambdaEndpoint } = await stack.details();
    const answer = await fetch(
      `${lambdaEndpoint}/2015-03-31/functions/easysmart-local-anomaly-scoring/invocations`,
      {
        method: 'POST',
        body: JSON.stringify({ source: 'aws.events', 'detail-type': 'Scheduled Event' }),
      },
    );
    if (answer.status !== 200)
      throw new Error(`scoring pass: ${answer.status} ${await answer.text()}`);
    return (await answer.json()) as ScoringPassSummary;
  });
}

async function untilCaughtUp(pass: () => Promise<ScoringPassSummary>) {
  const total: ScoringPassSummary = {
    tenants: 0,
    devices: 0,
    readings: 0,
    scored: 0,
    anomalies: 0,
    failedDevices: 0,
    caughtUp: false,
  };
  for (let n = 0; n < MAX_PASSES; n++) {
    const summary = await pass();
    total.tenants = Math.max(total.tenants, summary.tenants);
    total.devices += summary.devices;
    total.readings += summary.readings;
    total.scored += summary.scored;
    total.anomalies += summary.anomalies;
    total.failedDevices += summary.failedDevices;
    if (summary.caughtUp) return { ...total, caughtUp: true };
  }
  throw new Error(`anomaly scoring did not catch up in ${MAX_PASSES} passes`);
}
