import { type AppConfig, required } from '../../config.ts';
import { type SecretStore, secretField } from '../../secrets/domain/secrets.ts';
import {
  DEFAULT_RETENTION_PLANS,
  type RetentionPlan,
  ROLLUPS,
  rollupPolicy,
} from '../domain/retention.ts';
import { policyDurationMs } from './influxql.ts';

/**
 * The per-plan retention tiers on InfluxDB 2.x, InfluxDB Cloud and Timestream for InfluxDB:
 * one bucket per tier (`<database>/<policy>`) with the plan's retention period, and an
 * explicit DBRP mapping from `<database>` + `<policy>` to it, so the platform's InfluxQL
 * (`"iot_data"."free_plan"."sensor_data"`) and v1 writes (`db=iot_data&rp=free_plan`) reach
 * the right bucket through the v1 compatibility API. Uses the v2 HTTP API as documented at
 * docs.influxdata.com/influxdb/v2/api (`/api/v2/orgs`, `/api/v2/buckets`, `/api/v2/dbrps`,
 * `/api/v2/delete`).
 */

export interface InfluxV2Options {
  url: string;
  /** The API token, or how to read it (a secret). */
  token: string | (() => Promise<string>);
  org: string;
  database: string;
  plans?: readonly RetentionPlan[];
  fetch?: typeof fetch;
}

/**
 * INFLUX_VERSION=2's settings: the v2 API needs the organisation and a token (INFLUX_TOKEN,
 * or the secret INFLUX_TOKEN_SECRET names, read on first use).
 */
export function influxV2Settings(settings: AppConfig, secrets: () => SecretStore): InfluxV2Options {
  const { influx } = settings;
  const { tokenSecret } = influx;
  return {
    url: required(influx.url, 'INFLUX_URL'),
    token: tokenSecret
      ? () => secretField(secrets(), tokenSecret, 'token')
      : required(influx.token, 'INFLUX_TOKEN'),
    org: required(influx.org, 'INFLUX_ORG'),
    database: influx.db,
  };
}

export class InfluxV2Error extends Error {
  override readonly name = 'InfluxV2Error';
}

interface Bucket {
  id: string;
  name: string;
  retentionRules?: Array<{ type: string; everySeconds: number }>;
}

interface Tier {
  policy: string;
  bucket: string;
  everySeconds: number;
  isDefault: boolean;
}

function tiers(database: string, plans: readonly RetentionPlan[]): Tier[] {
  return plans.flatMap((plan) => {
    const keep = policyDurationMs(plan.duration);
    // 0: kept forever.
    const everySeconds = Number.isFinite(keep) ? keep / 1000 : 0;
    return [
      { policy: plan.policy, isDefault: plan.isDefault === true },
      ...ROLLUPS.map((rollup) => ({ policy: rollupPolicy(plan.policy, rollup), isDefault: false })),
    ].map((tier) => ({ ...tier, bucket: `${database}/${tier.policy}`, everySeconds }));
  });
}

class V2Api {
  readonly #options: InfluxV2Options;
  readonly #fetch: typeof fetch;
  #token: string | undefined;

  constructor(options: InfluxV2Options) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { token } = this.#options;
    this.#token ??= typeof token === 'string' ? token : await token();
    const response = await this.#fetch(`${this.#options.url.replace(/\/+$/, '')}${path}`, {
      method,
      headers: {
        authorization: `Token ${this.#token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // Not JSON: the text is the message.
      }
      throw new InfluxV2Error(
        `${method} ${path.split('?')[0]} answered ${response.status}: ${message}`,
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async orgId(): Promise<string> {
    const { orgs } = await this.call<{ orgs?: Array<{ id: string; name: string }> }>(
      'GET',
      `/api/v2/orgs?${new URLSearchParams({ org: this.#options.org })}`,
    );
    const org = orgs?.find((candidate) => candidate.name === this.#options.org);
    if (!org) throw new InfluxV2Error(`no organisation named ${this.#options.org}`);
    return org.id;
  }
}

/**
 * Creates or corrects each tier's bucket (retention period) and DBRP mapping. Idempotent:
 * the migration step runs it at every deploy.
 */
export async function ensureInfluxV2Schema(options: InfluxV2Options): Promise<void> {
  const api = new V2Api(options);
  const orgID = await api.orgId();
  for (const tier of tiers(options.database, options.plans ?? DEFAULT_RETENTION_PLANS)) {
    const rules = [{ type: 'expire', everySeconds: tier.everySeconds }];
    const { buckets } = await api.call<{ buckets?: Bucket[] }>(
      'GET',
      `/api/v2/buckets?${new URLSearchParams({ orgID, name: tier.bucket })}`,
    );
    let bucket = buckets?.find((candidate) => candidate.name === tier.bucket);
    if (!bucket) {
      bucket = await api.call<Bucket>('POST', '/api/v2/buckets', {
        orgID,
        name: tier.bucket,
        retentionRules: rules,
      });
    } else if ((bucket.retentionRules?.[0]?.everySeconds ?? 0) !== tier.everySeconds) {
      await api.call('PATCH', `/api/v2/buckets/${bucket.id}`, { retentionRules: rules });
    }
    const { content } = await api.call<{
      content?: Array<{ id: string; bucketID: string; default: boolean }>;
    }>(
      'GET',
      `/api/v2/dbrps?${new URLSearchParams({ orgID, db: options.database, rp: tier.policy })}`,
    );
    const mapping = content?.[0];
    if (!mapping) {
      await api.call('POST', '/api/v2/dbrps', {
        orgID,
        bucketID: bucket.id,
        database: options.database,
        retention_policy: tier.policy,
        default: tier.isDefault,
      });
    } else if (mapping.bucketID !== bucket.id || mapping.default !== tier.isDefault) {
      await api.call('PATCH', `/api/v2/dbrps/${mapping.id}?${new URLSearchParams({ orgID })}`, {
        bucketID: bucket.id,
        default: tier.isDefault,
      });
    }
  }
}

/**
 * Deletes a tenant's points older than a time from every tier's bucket: the v1 API's
 * InfluxQL `DELETE` does not exist on 2.x, and `/api/v2/delete` acts on one bucket.
 */
export function influxV2Purger(options: InfluxV2Options) {
  const api = new V2Api(options);
  let orgID: string | undefined;
  return async (tenantId: number, before: number): Promise<void> => {
    if (!Number.isSafeInteger(tenantId) || tenantId <= 0) {
      throw new InfluxV2Error(`invalid tenant id ${tenantId}`);
    }
    orgID ??= await api.orgId();
    for (const tier of tiers(options.database, options.plans ?? DEFAULT_RETENTION_PLANS)) {
      await api.call(
        'POST',
        `/api/v2/delete?${new URLSearchParams({ orgID, bucket: tier.bucket })}`,
        {
          start: '1970-01-01T00:00:00Z',
          // The range includes its stop.
          stop: new Date(before - 1).toISOString(),
          predicate: `tenant_id="${tenantId}"`,
        },
      );
    }
  };
}
