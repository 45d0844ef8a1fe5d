import type pg from 'pg';
import { noScoring, type ScoringPassSummary } from '../../shared/anomalies/domain/scoring-pass.ts';

/** More passes than this without catching up is a pass that does not progress. */
const MAX_PASSES = 30;

/**
 * Runs the scheduled anomaly scoring pass in-process over the given tenants (the test's
 * environment must be set first), pass after pass until it reports nothing left: what the
 * schedule does, without waiting for it. Only the test's own tenants: the files of the
 * suite share one database, and a pass over every tenant would score (and wait for) the
 * readings other files are storing at the same time.
 */
export async function scoreAnomalies(
  tenantIds: number | readonly number[],
): Promise<ScoringPassSummary> {
  const { anomalyScoringPass } = await import('../../shared/anomalies/scoring-composition.ts');
  const only = typeof tenantIds === 'number' ? [tenantIds] : tenantIds;
  return untilCaughtUp(() => anomalyScoringPass().run({ budgetMs: 10 * 60_000, tenantIds: only }));
}

/** The tenants of the devices whose topics these rule outputs carry. */
export async function tenantsOfOutputs(
  admin: pg.Pool,
  outputs: readonly unknown[],
): Promise<number[]> {
  const deviceIds = new Set<string>();
  for (const output of outputs) {
    const topic = (output as { topic?: unknown }).topic;
    if (typeof topic === 'string') deviceIds.add(topic.split('/')[1] ?? '');
  }
  const { rows } = await admin.query<{ tenant_id: number }>(
    'SELECT DISTINCT tenant_id FROM devices WHERE device_id = ANY($1)',
    [[...deviceIds]],
  );
  return rows.map((row) => row.tenant_id);
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
  const total = noScoring();
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
