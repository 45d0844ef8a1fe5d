import { z } from 'zod';
import { PLAN_NAMES } from '../accounts/domain/model.ts';
import { formatCsv } from './csv.ts';
import { currentPattern } from './pattern-schemas.ts';
import { roleSchema } from './schemas.ts';

/**
 * The HTTP API's response bodies. The route table names them per route; each schema given
 * a name here becomes a component of the OpenAPI document, and so a named type of the
 * dashboard's generated API types. Response objects are open (more fields are welcome,
 * DESIGN.md section 5).
 */
const named = <S extends z.ZodType>(id: string, schema: S): S => schema.meta({ id }) as S;

const isoTime = z.string().describe('ISO 8601 time, UTC');
const nullableTime = isoTime.nullable();

export const role = named('Role', roleSchema);

export const user = named(
  'User',
  z.looseObject({
    id: z.number().int(),
    tenant_id: z.number().int(),
    username: z.string(),
    email: z.string(),
    role,
    last_login_at: nullableTime,
    created_at: isoTime,
  }),
);

export const planName = named('PlanName', z.enum(PLAN_NAMES));

export const tenant = named(
  'Tenant',
  z.looseObject({
    id: z.number().int(),
    name: z.string(),
    plan: planName,
    effective_plan: planName,
    status: z.enum(['active', 'suspended']),
    trial_ends_at: nullableTime,
    created_at: isoTime,
  }),
);

export const plan = named(
  'Plan',
  z.looseObject({
    name: planName,
    display_name: z.string(),
    max_devices: z.number().int().nullable(),
    max_users: z.number().int().nullable(),
    max_entities_per_device: z.number().int().nullable(),
    max_series: z.number().int().nullable(),
    retention_days: z.number().int().nullable(),
    anomaly_detection: z.enum(['none', 'basic', 'advanced']),
    predictive_maintenance: z.boolean(),
    pattern_recognition: z.boolean(),
    custom_models: z.boolean(),
    edge_deployment: z.boolean(),
  }),
);

export const tenantOverview = named(
  'TenantOverview',
  z.looseObject({
    tenant,
    plan,
    usage: z.object({
      devices: z.number().int(),
      users: z.number().int(),
      entities: z.number().int(),
    }),
  }),
);

export const profile = named('Profile', z.looseObject({ user, tenant }));

export const tokenResponse = named(
  'AccessToken',
  z.looseObject({
    token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int(),
  }),
);

export const device = named(
  'Device',
  z.looseObject({
    id: z.number().int(),
    tenant_id: z.number().int(),
    device_id: z.string(),
    name: z.string(),
    type: z.string(),
    location: z.string().nullable(),
    status: z.enum(['online', 'offline']),
    config: z.record(z.string(), z.unknown()).nullable(),
    last_seen: nullableTime,
    entity_count: z.number().int(),
    created_at: isoTime,
    updated_at: isoTime,
  }),
);

export const readingValue = named('ReadingValue', z.union([z.number(), z.boolean(), z.string()]));

export const latestReading = named(
  'LatestReading',
  z.object({ value: readingValue, time: isoTime }),
);

export const entityMeasuringRange = named(
  'EntityMeasuringRange',
  z.object({
    min: z.number(),
    max: z.number(),
    source: z
      .enum(['device', 'user'])
      .describe('Announced in the device’s discovery, or set through the API (which wins)'),
  }),
);

export const entity = named(
  'Entity',
  z.looseObject({
    entity_id: z.string(),
    entity_type: z.enum(['switch', 'sensor', 'number', 'text']),
    name: z.string(),
    unit: z.string().nullable(),
    icon: z.string().nullable(),
    config: z.record(z.string(), z.unknown()).nullable(),
    measuring_range: entityMeasuringRange
      .nullable()
      .describe(
        'The span the sensor measures; the advanced anomaly detection (Industrial plan) uses it',
      ),
    latest: latestReading.nullable(),
  }),
);

export const measuringRangeResponse = z.looseObject({
  entity_id: z.string(),
  measuring_range: entityMeasuringRange.nullable(),
});

export const deviceDetail = named(
  'DeviceDetail',
  z.looseObject({
    device,
    entities: z.array(entity),
    current_pattern: currentPattern.describe(
      "The device's operating mode over its latest complete window (pattern recognition, Industrial plan); null without the plan, patterns or recent readings",
    ),
  }),
);

export const credentials = named(
  'Credentials',
  z.looseObject({
    client_id: z.string(),
    username: z.string().optional(),
    password: z.string().optional(),
    certificate_pem: z.string().optional(),
    private_key: z.string().optional(),
    certificate_id: z.string().optional(),
    broker_url: z.string().optional(),
    claim_certificate_id: z
      .string()
      .optional()
      .describe(
        'AWS IoT fleet provisioning by claim: the claim certificate the device uses once, at its first connection, to obtain its own certificate',
      ),
  }),
);

export const claimCredential = named(
  'ClaimCredential',
  z.looseObject({
    certificate_id: z.string(),
    certificate_pem: z.string(),
    private_key: z.string(),
    provisioning_template: z.string(),
    client_id_prefix: z.string(),
    broker_url: z.string().optional(),
  }),
);

export const bulkRegistration = named(
  'BulkRegistration',
  z.looseObject({
    devices: z.array(
      z.looseObject({
        /** The row of the request this device came from. */
        row: z.number().int(),
        device,
        credentials,
      }),
    ),
    claim: claimCredential
      .optional()
      .describe(
        "On AWS IoT: the batch's one claim credential, which lets each of its devices obtain its own certificate once (docs/deploy.md, Fleet provisioning by claim)",
      ),
  }),
);

const BULK_CSV_COLUMNS = [
  'row',
  'id',
  'device_id',
  'client_id',
  'username',
  'password',
  'broker_url',
  'certificate_id',
  'certificate_pem',
  'private_key',
  'claim_certificate_id',
  'provisioning_template',
] as const;

/**
 * The CSV download of a bulk registration: one line per device with its credential. With a
 * claim credential (AWS IoT), it comes first, on a line of its own without a device, and
 * each device's line names it in claim_certificate_id.
 */
export function bulkRegistrationCsv(answer: z.input<typeof bulkRegistration>): string {
  const claim = answer.claim;
  const claimLine = claim
    ? [
        {
          client_id: `${claim.client_id_prefix}<device_id>`,
          broker_url: claim.broker_url,
          certificate_id: claim.certificate_id,
          certificate_pem: claim.certificate_pem,
          private_key: claim.private_key,
          provisioning_template: claim.provisioning_template,
        },
      ]
    : [];
  return formatCsv(BULK_CSV_COLUMNS, [
    ...claimLine,
    ...answer.devices.map(({ row, device: registered, credentials: credential }) => ({
      row,
      id: registered.id,
      device_id: registered.device_id,
      client_id: credential.client_id,
      username: credential.username,
      password: credential.password,
      broker_url: credential.broker_url,
      certificate_id: credential.certificate_id,
      certificate_pem: credential.certificate_pem,
      private_key: credential.private_key,
      claim_certificate_id: credential.claim_certificate_id,
    })),
  ]);
}

export const commandStatus = named(
  'CommandStatus',
  z.enum(['sent', 'confirmed', 'timed_out', 'failed']),
);

export const command = named(
  'Command',
  z.looseObject({ command_id: z.uuid(), status: commandStatus }),
);

export const storedCommand = named(
  'StoredCommand',
  command.extend({
    device_id: z.number().int(),
    entity_id: z.string(),
    value: z.unknown(),
    triggered_by: z.string(),
    created_at: isoTime,
    updated_at: isoTime,
  }),
);

export const point = named('Point', z.object({ time: isoTime, value: readingValue.nullable() }));

export const telemetry = named(
  'Telemetry',
  z.looseObject({
    device_id: z.string(),
    source: z.enum(['raw', '5m', '1h']),
    series: z.array(z.object({ entity_id: z.string(), points: z.array(point) })),
  }),
);

export const jwks = z.object({
  keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })),
});

export const model = named(
  'Model',
  z.looseObject({
    id: z.number().int(),
    device_id: z.number().int(),
    entity_id: z.string(),
    kind: z.string(),
    version: z.string(),
    threshold: z.number(),
    training_points: z.number().int(),
    metrics: z.record(z.string(), z.unknown()),
    /** `rejected`: it did not beat the naive forecasts on held-back readings and never scored. */
    status: z.enum(['active', 'superseded', 'rejected']),
    status_reason: z.string().nullable(),
    /** `trained` by the platform with the chosen family and settings, or `uploaded` by the tenant. */
    origin: z.enum(['trained', 'uploaded']),
    /** The family and settings, or the uploaded network's layers and declared input. */
    settings: z.record(z.string(), z.unknown()).nullable(),
    trained_at: isoTime,
  }),
);

/** A family and settings chosen for an entity on every device of a type. */
export const typeSettings = named(
  'ModelTypeSettings',
  z.object({
    device_type: z.string(),
    entity_id: z.string(),
    family: z.enum(['dense', 'linear']),
    window_size: z.number().int(),
    size: z.enum(['small', 'medium', 'large']),
    /** Other numeric entities of the device the model also reads; empty: none. */
    co_entities: z.array(z.string()),
    /** How many aligned values of each of them it reads. */
    co_window: z.number().int(),
    updated_at: isoTime,
  }),
);

/** One score the plan's detector gave a reading (an anomaly when `anomalous`). */
export const prediction = named(
  'Prediction',
  z.looseObject({
    entity_id: z.string(),
    time: isoTime,
    score: z.number(),
    anomalous: z.boolean(),
    value: z.number(),
    reason: z.string().nullable(),
    detector: z.string(),
    model: z.string(),
    model_version: z.string(),
  }),
);

const detector = z.enum(['basic', 'advanced']).describe("The plan's detector");

export const edgeModel = named(
  'EdgeModel',
  z.looseObject({
    /** Null, like the other fields of the deployment, while nothing was ever sent (`none`). */
    entity_id: z.string().nullable(),
    version: z.string().nullable(),
    /** CRC-32 of the model file's body, 8 hex digits: what the device confirms with. */
    checksum: z.string().nullable(),
    /** `failed` also when the device did not confirm within the command timeout. */
    status: z.enum(['none', 'sent', 'confirmed', 'failed']),
    status_reason: z.string().nullable(),
    size_bytes: z.number().int().nullable(),
    weight_encoding: z.enum(['f32', 'i16', 'i8']).nullable(),
    created_at: nullableTime,
    updated_at: nullableTime,
    /** What the device last said it runs (on every connect and after each model). */
    running: z
      .object({ version: z.string(), checksum: z.string(), reported_at: isoTime })
      .nullable(),
    /** The latest anomalies the device found itself, newest first. */
    anomalies: z.array(
      z.object({
        entity_id: z.string(),
        time: isoTime,
        value: z.number(),
        score: z.number(),
        reason: z.string().nullable(),
        model_version: z.string(),
      }),
    ),
  }),
);

export const anomalies = named(
  'Anomalies',
  z.looseObject({ device_id: z.string(), detector, anomalies: z.array(prediction) }),
);

export const predictions = named(
  'Predictions',
  z.looseObject({ device_id: z.string(), detector, predictions: z.array(prediction) }),
);

export const errorResponse = named(
  'Error',
  z.object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      /** A bulk request's failing rows (422 invalid_rows), each with its own code and message. */
      rows: z
        .array(
          z.object({
            row: z.number().int(),
            device_id: z.string().optional(),
            code: z.string(),
            message: z.string(),
          }),
        )
        .optional(),
    }),
  }),
);
