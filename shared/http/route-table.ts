import { z } from 'zod';
import type { PlanName } from '../accounts/domain/model.ts';
import { alarm, alarmDetail, alarmQuery, alarmRule } from '../alarms/adapters/http-schemas.ts';
import { newRuleSchema, rulePatchSchema } from '../alarms/domain/model.ts';
import { auditPage, auditQuery } from '../audit/adapters/http-schemas.ts';
import { deviceExport, deviceExportQuery, exportJob, tenantExportBody } from './export-schemas.ts';
import {
  devicesRulResponse,
  entityLimitBody,
  fleetModel,
  healthResponse,
  limitResponse,
  maintenanceEvent,
  maintenanceEventBody,
  trainFleetBody,
  trainingRequestResponse,
} from './maintenance-schemas.ts';
import {
  discoverPatternsBody,
  pattern,
  patternJob,
  patternJobParams,
  patternLabelBody,
  patternParams,
  patternsResponse,
  patternTimeline,
  patternTimelineQuery,
} from './pattern-schemas.ts';
import {
  anomalies,
  bulkRegistration,
  bulkRegistrationCsv,
  credentials,
  device,
  deviceDetail,
  edgeModel,
  jwks,
  measuringRangeResponse,
  model,
  predictions,
  profile,
  command as sentCommand,
  storedCommand,
  telemetry,
  tenant,
  tenantOverview,
  tokenResponse,
  typeSettings,
  user,
} from './responses.ts';
import {
  addUserBody,
  bulkDevicesBody,
  changePasswordBody,
  changeRoleBody,
  commandBody,
  commandParams,
  devicePatchBody,
  edgeModelBody,
  entityParams,
  idParam,
  loginBody,
  measuringRangeBody,
  newDeviceBody,
  registerBody,
  telemetryQuery,
  trainModelBody,
  typeSettingsBody,
  uploadModelBody,
} from './schemas.ts';

/**
 * THE route table: every HTTP route of the platform, once. From it come each function's
 * routing and request validation (`httpApi` in ./api.ts), the OpenAPI document
 * (./openapi.ts), and so the dashboard's API types (`npm run api:types`), and serverless.yml's
 * httpApi events (`npm run http:events` writes infra/http-events.json, which serverless.yml reads).
 *
 * Adding a route: one entry here, its handler in `functions/<function>/handler.ts` (the
 * type checker refuses a function that misses one of its routes), then `npm run api:types`
 * and `npm run http:events` (test/unit/route-table.test.ts and api-types.test.ts fail while
 * either output is stale).
 */

/** Who may call a route: anyone, any signed-in user, or users whose role may change things. */
export type Access = 'public' | 'read' | 'write';

/** Roles that may call a route of each access level (the OpenAPI document's `x-roles`). */
export const ROLES_BY_ACCESS = {
  public: [],
  read: ['owner', 'admin', 'viewer'],
  write: ['owner', 'admin'],
} as const satisfies Record<Access, readonly string[]>;

export type Tag =
  | 'auth'
  | 'tenant'
  | 'users'
  | 'devices'
  | 'commands'
  | 'ml'
  | 'maintenance'
  | 'patterns'
  | 'alarms'
  | 'exports'
  | 'audit'
  | 'meta';

/** The lowest plan whose tenants may use a route; others get 403 `plan_required`. */
export type PlanGate = Exclude<PlanName, 'free'>;

export interface RouteDefinition {
  /** The serverless.yml function that serves it. */
  function: string;
  summary: string;
  /** A longer explanation, when the summary cannot say all a client must know. */
  description?: string;
  tag: Tag;
  access: Access;
  plan?: PlanGate;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** A valid body, shown in the document (and what the authorisation matrix sends). */
  example?: Record<string, unknown>;
  /** Success status and its body schema (none: the answer has no body). */
  success: { status: number; description: string; schema?: z.ZodType };
  /** Client errors this route can answer beyond those its access, plan and input imply. */
  errors?: number[];
  /** Headers every success answer carries. */
  headers?: Record<string, string>;
  /** The largest body the route takes, when more than the default 64 KiB. */
  maxBodyBytes?: number;
  /**
   * CSV beside JSON: `request` takes a `text/csv` body with a header line, read as an array
   * of objects (one per line, keyed by column, empty cells left out); `answer` writes the
   * success answer as a CSV download when the caller asks (`?format=csv` or
   * `Accept: text/csv`).
   */
  csv?: { request?: boolean; answer?: (answer: never) => string; filename?: string };
}

/**
 * The smallest valid upload: one linear Dense layer reading 23 relative readings and the
 * time of day (all weights zero, so it forecasts the last value and the gate rejects it).
 */
const EXAMPLE_UPLOAD = {
  device_id: 1,
  entity_id: 'temperature',
  model_json: {
    format: 'layers-model',
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'forecaster',
        layers: [
          {
            class_name: 'Dense',
            config: { name: 'out', units: 1, activation: 'linear', batch_input_shape: [null, 25] },
          },
        ],
      },
    },
    weightsManifest: [
      {
        paths: ['forecaster.weights.bin'],
        weights: [
          { name: 'out/kernel', shape: [25, 1], dtype: 'float32' },
          { name: 'out/bias', shape: [1], dtype: 'float32' },
        ],
      },
    ],
  },
  weights: `${'AAAA'.repeat(34)}AAA=`,
  input: {
    window_size: 24,
    encoding: 'relative',
    time_of_day: true,
    normalisation: { mean: 20, std: 2 },
  },
};

export const routeTable = {
  'POST /api/auth/register': {
    function: 'auth',
    summary: 'Sign up: creates the tenant (plan free) and its owner',
    tag: 'auth',
    access: 'public',
    body: registerBody,
    example: {
      tenant_name: 'Acme Plant',
      username: 'ana',
      email: 'ana@example.com',
      password: 'a long password',
    },
    success: {
      status: 201,
      description: 'The owner, the tenant and an access token',
      schema: tokenResponse.extend({ user, tenant }),
    },
    errors: [409, 429, 503],
  },
  'POST /api/auth/login': {
    function: 'auth',
    summary: 'Sign in with username or email',
    tag: 'auth',
    access: 'public',
    body: loginBody,
    example: { username: 'ana', password: 'a long password' },
    success: { status: 200, description: 'An access token', schema: tokenResponse },
    errors: [401, 429, 503],
  },
  'POST /api/auth/password': {
    function: 'auth',
    summary: "Change the caller's password; every other session of theirs ends",
    tag: 'auth',
    access: 'read',
    body: changePasswordBody,
    example: { current_password: 'a long password', new_password: 'an even longer password' },
    success: {
      status: 200,
      description: 'A fresh access token for this session',
      schema: tokenResponse,
    },
    errors: [403, 429, 503],
  },
  'POST /api/auth/logout': {
    function: 'auth',
    summary: 'Sign out: every token of the caller stops working and their WebSockets close',
    tag: 'auth',
    access: 'read',
    success: { status: 204, description: 'Signed out' },
  },
  'GET /api/auth/me': {
    function: 'auth',
    summary: 'The caller and their tenant',
    tag: 'auth',
    access: 'read',
    success: { status: 200, description: 'The caller', schema: profile },
  },
  'GET /.well-known/jwks.json': {
    function: 'auth',
    summary: 'Public keys that verify access tokens',
    tag: 'auth',
    access: 'public',
    success: { status: 200, description: 'A JSON Web Key Set', schema: jwks },
    headers: { 'cache-control': 'public, max-age=300' },
  },
  'GET /api/tenant': {
    function: 'auth',
    summary: "The tenant's plan, limits and usage",
    tag: 'tenant',
    access: 'read',
    success: { status: 200, description: 'Plan and usage', schema: tenantOverview },
  },
  'GET /api/users': {
    function: 'auth',
    summary: "The tenant's users",
    tag: 'users',
    access: 'read',
    success: { status: 200, description: 'Users', schema: objectOf('users', user) },
  },
  'POST /api/users': {
    function: 'auth',
    summary: 'Add a user to the tenant',
    tag: 'users',
    access: 'write',
    body: addUserBody,
    example: {
      username: 'bruno',
      email: 'bruno@example.com',
      password: 'another long password',
      role: 'viewer',
    },
    success: { status: 201, description: 'The new user', schema: wrapped('user', user) },
    errors: [409, 503],
  },
  'PATCH /api/users/{id}': {
    function: 'auth',
    summary: "Change a user's role (only an owner changes an owner); the user's sessions end",
    tag: 'users',
    access: 'write',
    params: idParam,
    body: changeRoleBody,
    example: { role: 'viewer' },
    success: { status: 200, description: 'The user', schema: wrapped('user', user) },
    errors: [403, 404, 409],
  },
  'DELETE /api/users/{id}': {
    function: 'auth',
    summary: 'Remove a user (only an owner removes an owner); their sessions end',
    tag: 'users',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [403, 404, 409],
  },
  'GET /api/devices': {
    function: 'devices',
    summary: "The tenant's devices",
    tag: 'devices',
    access: 'read',
    success: { status: 200, description: 'Devices', schema: objectOf('devices', device) },
  },
  'POST /api/devices': {
    function: 'devices',
    summary: 'Register a device; its broker credential is shown only in this answer',
    tag: 'devices',
    access: 'write',
    body: newDeviceBody,
    example: {
      device_id: 'COMP_001',
      name: 'Compressor 1',
      type: 'compressor',
      location: 'Hall B',
    },
    success: {
      status: 201,
      description: 'The device and its credential',
      schema: wrapped('device', device).extend({ credentials }),
    },
    errors: [409, 502],
  },
  'POST /api/devices/bulk': {
    function: 'devices',
    summary:
      'Register up to 10,000 devices at once (JSON array or CSV with a header), all or none; their credentials are shown only in this answer',
    description:
      'Rows are POST /api/devices bodies; a CSV needs the columns device_id, name and type and may have location (Content-Type: text/csv). Every row is checked before any device is created. If any row fails (invalid field, reserved or repeated device_id, a device_id already registered), nothing is created and the 422 error lists each failing row: {"error":{"code":"invalid_rows","message","rows":[{"row","device_id","code","message"}]}}. A batch that does not fit the plan\'s device limit is refused whole (403 plan_limit_reached). Ask for the answer as CSV (?format=csv or Accept: text/csv) to download the credentials as a file. On AWS IoT no certificate is made per device: the answer holds the batch\'s one claim credential (claim; in the CSV, the first line, without a device), with which each device obtains its own certificate once, at its first connection (fleet provisioning by claim), and each device\'s credentials name it (claim_certificate_id).',
    tag: 'devices',
    access: 'write',
    query: z.object({ format: z.enum(['json', 'csv']).optional() }),
    body: bulkDevicesBody,
    example: [
      { device_id: 'PUMP_0001', name: 'Pump 1', type: 'pump', location: 'Line 1' },
      { device_id: 'PUMP_0002', name: 'Pump 2', type: 'pump', location: 'Line 1' },
    ] as unknown as Record<string, unknown>,
    success: {
      status: 201,
      description: 'Each device, the row it came from and its credential, in row order',
      schema: bulkRegistration,
    },
    errors: [409, 422, 502],
    maxBodyBytes: 4 * 1024 * 1024,
    csv: {
      request: true,
      answer: bulkRegistrationCsv as (answer: never) => string,
      filename: 'device-credentials.csv',
    },
  },
  'GET /api/devices/{id}': {
    function: 'devices',
    summary: "A device and each entity's latest value",
    tag: 'devices',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'The device', schema: deviceDetail },
    errors: [404],
  },
  'PATCH /api/devices/{id}': {
    function: 'devices',
    summary: 'Update a device',
    tag: 'devices',
    access: 'write',
    params: idParam,
    body: devicePatchBody,
    example: { name: 'Compressor 1 (rebuilt)', location: 'Hall C' },
    success: { status: 200, description: 'The device', schema: wrapped('device', device) },
    errors: [404],
  },
  'DELETE /api/devices/{id}': {
    function: 'devices',
    summary: 'Remove a device, its entities and its credential',
    tag: 'devices',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Removed' },
    errors: [404],
  },
  'GET /api/devices/{id}/telemetry': {
    function: 'devices',
    summary: 'Raw or aggregated readings; old ranges are read from the rollups',
    tag: 'devices',
    access: 'read',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Series per entity', schema: telemetry },
    errors: [404],
  },
  'POST /api/devices/{id}/entities/{entity_id}/commands': {
    function: 'devices',
    summary: "Set an entity's value: published to the device's .../set topic",
    tag: 'commands',
    access: 'write',
    params: entityParams,
    body: commandBody,
    example: { value: true },
    success: { status: 202, description: 'The command, sent', schema: sentCommand },
    errors: [404, 409, 502],
  },
  'PUT /api/devices/{id}/entities/{entity_id}/measuring-range': {
    function: 'devices',
    summary:
      "Set a numeric entity's measuring range: the span its sensor measures, which the advanced anomaly detection uses",
    description:
      "Both `min` and `max` (min < max, in the entity's unit) set the range as the tenant's own, which wins over the one the device announces in its discovery (`measuring_range` in its entities). Neither clears the tenant's range: the device's announced one, if any, applies again. Only sensor and number entities have a range. With a range, the advanced detector also alarms at a level the entity has never shown on that span and damps its statistics at the levels the entity usually sits at; a changed range starts those levels afresh.",
    tag: 'devices',
    access: 'write',
    plan: 'industrial',
    params: entityParams,
    body: measuringRangeBody,
    example: { min: -40, max: 125 },
    success: {
      status: 200,
      description: 'The range now in force',
      schema: measuringRangeResponse,
    },
    errors: [404],
  },
  'GET /api/devices/{id}/commands': {
    function: 'devices',
    summary: "A device's recent commands",
    tag: 'commands',
    access: 'read',
    params: idParam,
    success: {
      status: 200,
      description: 'Commands, newest first',
      schema: objectOf('commands', storedCommand),
    },
    errors: [404],
  },
  'GET /api/devices/{id}/commands/{command_id}': {
    function: 'devices',
    summary: 'One command and its outcome',
    tag: 'commands',
    access: 'read',
    params: commandParams,
    success: { status: 200, description: 'The command', schema: storedCommand },
    errors: [404],
  },
  'GET /api/devices/{id}/anomalies': {
    function: 'ml',
    summary: "Anomalies the plan's detector found in a time range",
    tag: 'ml',
    access: 'read',
    plan: 'professional',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Anomalies', schema: anomalies },
    errors: [404],
  },
  'GET /api/devices/{id}/predictions': {
    function: 'ml',
    summary: "Every score the plan's detector gave in a time range",
    tag: 'ml',
    access: 'read',
    plan: 'professional',
    params: idParam,
    query: telemetryQuery,
    success: { status: 200, description: 'Scores', schema: predictions },
    errors: [404],
  },
  'GET /api/ml/models': {
    function: 'ml',
    summary: "The tenant's models, newest first: trained and uploaded, with status and metrics",
    tag: 'ml',
    access: 'read',
    success: { status: 200, description: 'Models', schema: objectOf('models', model) },
  },
  'POST /api/ml/models': {
    function: 'ml',
    summary:
      "Train an entity's model now with a chosen family and settings (plans with custom models), through the quality gate",
    description:
      "Families: `dense` (a ReLU network; `size` small = one hidden layer of 8, medium = 16 and 8, large = 32 and 16) and `linear` (an autoregressive linear forecast, no hidden layer). `window_size`: the readings before the forecast one the model sees. `co_entities` (at most 4): other numeric entities of the same device the model also reads, each as its values aligned with the entity's last `co_window` readings (1-32, default 4; aligned as of each reading's time: the other entity's latest value at or before it), in training, in the quality gate and when the ingestion path scores; a reading is forecast only once every one of them has reported. Omitted settings are the platform's default model (dense, medium, 24 readings, no other entities). The model is trained on the entity's one-minute means of the last 30 days but the most recent tenth, which is held back to judge it.",
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    body: trainModelBody,
    example: {
      device_id: 1,
      entity_id: 'temperature',
      family: 'dense',
      window_size: 24,
      size: 'medium',
    },
    success: {
      status: 201,
      description:
        "The new model: active, or rejected (with status_reason and the held-back metrics) when it does not forecast held-back readings better than repeating the last value or yesterday's value; a rejected model leaves the previous one active",
      schema: wrapped('model', model),
    },
    errors: [404, 422],
  },
  'GET /api/ml/settings': {
    function: 'ml',
    summary: 'The model families and settings chosen per device type and entity',
    tag: 'ml',
    access: 'read',
    success: { status: 200, description: 'Settings', schema: objectOf('settings', typeSettings) },
  },
  'PUT /api/ml/settings': {
    function: 'ml',
    summary:
      "Choose the family and settings of an entity's model on every device of a type (plans with custom models)",
    description:
      'The scheduled trainer (hourly) trains the entity of every device of the type with these settings, and again after each change; each model passes the quality gate before it becomes active. A training request without settings of its own uses them too. `co_entities` and `co_window` are as for `POST /api/ml/models`; a device of the type without one of those entities is not trained with them (the scheduled run skips it).',
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    body: typeSettingsBody,
    example: {
      device_type: 'pump',
      entity_id: 'temperature',
      family: 'dense',
      size: 'large',
      window_size: 48,
      co_entities: ['current'],
      co_window: 4,
    },
    success: {
      status: 200,
      description: 'The stored choice',
      schema: wrapped('settings', typeSettings),
    },
  },
  'POST /api/ml/models/upload': {
    function: 'ml',
    summary:
      "Upload the tenant's own TensorFlow.js Layers model for an entity (plans with custom models), through the quality gate",
    description:
      "`model_json` is the model.json that TensorFlow.js's `model.save()` or the Keras converter writes; `weights` is its weight files concatenated in manifest order, base64 (at most 512 KiB of float32 weights). Only Sequential models of InputLayer, Dense, Dropout (inert when scoring) and Activation layers (after a linear Dense) are accepted, with activations linear, relu, relu6, tanh, sigmoid, elu, selu, softplus or softsign; no code of the upload runs. `input` declares how the platform feeds the entity's readings: the last `window_size` readings, `relative` (each minus the latest, over normalisation.std; the output is the change from the latest, over std) or `standardised` (each minus normalisation.mean, over std; the output is the next reading standardised the same way), followed by the sine and cosine of the time of day when `time_of_day`. The model's input must have exactly that many features and one output. Nothing is stored unless every check passes; the model is then calibrated on the entity's history and becomes active only if it forecasts the held-back readings better than the naive forecasts.",
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    body: uploadModelBody,
    maxBodyBytes: 1024 * 1024,
    example: EXAMPLE_UPLOAD,
    success: {
      status: 201,
      description:
        'The uploaded model: active, or rejected by the quality gate (with status_reason and the held-back metrics); a rejected model leaves the previous one active',
      schema: wrapped('model', model),
    },
    errors: [404, 413, 422],
  },
  'POST /api/ml/models/{id}/activate': {
    function: 'ml',
    summary: 'Make an earlier model of its entity the active one again (a roll-back)',
    description:
      "Any model that passed the quality gate may be activated again; its entity's active model becomes superseded, and scoring switches at the next reading. A rejected model answers 409.",
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    params: idParam,
    success: { status: 200, description: 'The model, now active', schema: wrapped('model', model) },
    errors: [404, 409],
  },
  'POST /api/devices/{id}/edge-model': {
    function: 'ml',
    summary: "Send an entity's anomaly model to the device, which then scores its own readings",
    description:
      "Exports the entity's active model (or `version`, an earlier one: a roll-back) with the detector's current statistics into the edge model file and publishes it in chunks on devices/{device_id}/model/set. The device installs it only when complete and intact, keeps it across reboots, and confirms with the version and checksum on devices/{device_id}/model/state; GET shows the outcome.",
    tag: 'ml',
    access: 'write',
    plan: 'industrial',
    params: idParam,
    body: edgeModelBody,
    example: { entity_id: 'temperature' },
    success: { status: 202, description: 'Sent; not yet confirmed', schema: edgeModel },
    errors: [404, 422, 502],
  },
  'GET /api/devices/{id}/edge-model': {
    function: 'ml',
    summary:
      'The edge model last sent to the device, its status, what the device runs and the anomalies it found',
    tag: 'ml',
    access: 'read',
    plan: 'industrial',
    params: idParam,
    success: {
      status: 200,
      description: 'The edge model (status `none` when nothing was ever sent)',
      schema: edgeModel,
    },
    errors: [404],
  },
  'POST /api/alarm-rules': {
    function: 'alarms',
    summary: 'Create an alarm rule on a device or every device of a type',
    description:
      'Conditions: threshold (>, <, outside, inside; held for_seconds; cleared past hysteresis), no_data (minutes), offline (minutes), anomaly (min_score; plans with anomaly detection), relay_uncommanded. Notifications: webhooks signed with the rule secret (X-EasySmart-Signature: t=<unix seconds>,v1=<HMAC-SHA256 hex of "<t>.<body>">) and e-mails, at most one per rule and device per quiet_minutes. Webhook secrets are write-only.',
    tag: 'alarms',
    access: 'write',
    body: newRuleSchema,
    example: {
      name: 'Oil too hot',
      device_id: 1,
      entity_id: 'temperature',
      severity: 'critical',
      condition: { type: 'threshold', op: '>', value: 80, for_seconds: 30, hysteresis: 5 },
      notify: {
        webhooks: [{ url: 'https://hooks.example.com/alarms', secret: 'a-secret-of-16-chars+' }],
        emails: ['shift@example.com'],
      },
    },
    success: { status: 201, description: 'The rule', schema: wrapped('rule', alarmRule) },
    errors: [404],
  },
  'GET /api/alarm-rules': {
    function: 'alarms',
    summary: "The tenant's alarm rules",
    tag: 'alarms',
    access: 'read',
    success: { status: 200, description: 'Rules', schema: objectOf('rules', alarmRule) },
  },
  'GET /api/alarm-rules/{id}': {
    function: 'alarms',
    summary: 'An alarm rule',
    tag: 'alarms',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'The rule', schema: wrapped('rule', alarmRule) },
    errors: [404],
  },
  'PATCH /api/alarm-rules/{id}': {
    function: 'alarms',
    summary: 'Change an alarm rule; a changed rule judges afresh',
    tag: 'alarms',
    access: 'write',
    params: idParam,
    body: rulePatchSchema,
    example: { severity: 'major', quiet_minutes: 30 },
    success: { status: 200, description: 'The rule', schema: wrapped('rule', alarmRule) },
    errors: [404],
  },
  'DELETE /api/alarm-rules/{id}': {
    function: 'alarms',
    summary: 'Delete an alarm rule; its open alarms clear, their history stays',
    tag: 'alarms',
    access: 'write',
    params: idParam,
    success: { status: 204, description: 'Deleted' },
    errors: [404],
  },
  'GET /api/alarms': {
    function: 'alarms',
    summary: 'Alarms: active first, then acknowledged, then cleared; the most severe first',
    tag: 'alarms',
    access: 'read',
    query: alarmQuery,
    success: { status: 200, description: 'Alarms', schema: objectOf('alarms', alarm) },
  },
  'GET /api/alarms/{id}': {
    function: 'alarms',
    summary: 'An alarm with its history and its notification deliveries',
    tag: 'alarms',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'The alarm', schema: wrapped('alarm', alarmDetail) },
    errors: [404],
  },
  'POST /api/alarms/{id}/ack': {
    function: 'alarms',
    summary: 'Acknowledge an active alarm (who and when are recorded)',
    tag: 'alarms',
    access: 'write',
    params: idParam,
    success: { status: 200, description: 'The alarm', schema: wrapped('alarm', alarm) },
    errors: [404, 409],
  },
  'GET /api/devices/{id}/export': {
    function: 'export',
    summary:
      "Export a device's readings (CSV or JSON lines; by default the last 24 hours) into a file behind an expiring link",
    description:
      'The points are streamed into the file (constant memory for any range): a header row, then one row per point in time order with ISO 8601 times. source=5m or 1h exports the rollups (mean).',
    tag: 'exports',
    access: 'read',
    params: idParam,
    query: deviceExportQuery,
    success: { status: 200, description: 'The export', schema: deviceExport },
    errors: [404],
  },
  'POST /api/exports': {
    function: 'export',
    summary: "Export the tenant's devices (or those listed) as a job; poll it for the link",
    tag: 'exports',
    access: 'read',
    body: tenantExportBody,
    example: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z', format: 'csv' },
    success: { status: 202, description: 'The job', schema: exportJob },
  },
  'GET /api/exports/{id}': {
    function: 'export',
    summary: 'An export job; once done, its expiring link',
    tag: 'exports',
    access: 'read',
    params: idParam,
    success: { status: 200, description: 'The job', schema: exportJob },
    errors: [404],
  },
  'GET /api/audit': {
    function: 'audit',
    summary: 'The audit trail: who changed what, when and from where (owners and admins)',
    tag: 'audit',
    access: 'write',
    query: auditQuery,
    success: { status: 200, description: 'A page of entries, newest first', schema: auditPage },
  },
  'POST /api/devices/{id}/maintenance': {
    function: 'maintenance',
    summary: 'Record a maintenance event: failure, repair, replacement or inspection',
    description:
      'A failure ends a run-to-failure history that the fleet model learns from; a failure, repair or replacement starts the next life. The time defaults to now and may not be ahead of it.',
    tag: 'maintenance',
    access: 'write',
    plan: 'professional',
    params: idParam,
    body: maintenanceEventBody,
    example: { kind: 'inspection', note: 'bearings checked' },
    success: { status: 201, description: 'The event', schema: wrapped('event', maintenanceEvent) },
    errors: [404],
  },
  'GET /api/devices/{id}/maintenance': {
    function: 'maintenance',
    summary: "A device's maintenance events, newest first",
    tag: 'maintenance',
    access: 'read',
    plan: 'professional',
    params: idParam,
    success: { status: 200, description: 'Events', schema: objectOf('events', maintenanceEvent) },
    errors: [404],
  },
  'PUT /api/devices/{id}/entities/{entity_id}/limit': {
    function: 'maintenance',
    summary:
      "Set a numeric entity's limit; the device's health forecasts when its trend crosses it",
    description:
      'Above, below or both (below < above); neither removes the limit. Only sensor and number entities take a limit.',
    tag: 'maintenance',
    access: 'write',
    plan: 'professional',
    params: entityParams,
    body: entityLimitBody,
    example: { above: 90 },
    success: { status: 200, description: 'The limit now in force', schema: limitResponse },
    errors: [404],
  },
  'GET /api/devices/{id}/health': {
    function: 'maintenance',
    summary:
      "A device's health: remaining useful life with its 10-90% interval, and when each limit is crossed",
    description:
      "The RUL comes from the fleet model of the device's type (null while none is active), computed from its readings since its last failure, repair or replacement. Each limit's forecast is fitted to the entity's hourly means of the last 14 days. Status: service_soon when a limit is crossed or forecast within 7 days, or the RUL is within a fifth of the model's horizon; watch when a crossing's 10th percentile is within 30 days or the RUL's within half the horizon.",
    tag: 'maintenance',
    access: 'read',
    plan: 'professional',
    params: idParam,
    success: { status: 200, description: 'Health', schema: healthResponse },
    errors: [404],
  },
  'GET /api/maintenance/devices': {
    function: 'maintenance',
    summary: "Every device's latest remaining useful life (to order the fleet by it)",
    tag: 'maintenance',
    access: 'read',
    plan: 'professional',
    success: { status: 200, description: 'Devices with their RUL', schema: devicesRulResponse },
  },
  'GET /api/maintenance/models': {
    function: 'maintenance',
    summary: "The tenant's fleet remaining-useful-life models, newest first",
    tag: 'maintenance',
    access: 'read',
    plan: 'professional',
    success: { status: 200, description: 'Models', schema: objectOf('models', fleetModel) },
  },
  'POST /api/maintenance/models': {
    function: 'maintenance',
    summary: "Ask for a fleet's remaining-useful-life model to be trained (within 5 minutes)",
    description:
      "The fleet is the tenant's devices of one type; its histories run from each device's start, failure, repair or replacement to its next failure. The new model becomes active only if it beats the fleet's mean life on histories held back from its training; otherwise it is listed as rejected with the reason and the previous model stays active.",
    tag: 'maintenance',
    access: 'write',
    plan: 'professional',
    body: trainFleetBody,
    example: { device_type: 'press', step_unit: 'hours' },
    success: {
      status: 202,
      description: 'The request, queued for the scheduled trainer',
      schema: wrapped('request', trainingRequestResponse),
    },
    errors: [404],
  },
  'POST /api/devices/{id}/patterns/discover': {
    function: 'patterns',
    summary: "Discover a device's recurring operating modes from its history (a job)",
    description:
      "Cuts the history of the device's numeric entities into fixed windows (8 steps; the step follows the readings' density, at most 8,000 steps), describes each window by each entity's level, spread and change, and clusters them (k-means, k chosen by silhouette; one mode when no clustering separates well). The result replaces the device's patterns; labels of earlier patterns carry over to the new pattern that matches them. Poll the job with GET .../patterns/jobs/{job_id}.",
    tag: 'patterns',
    access: 'write',
    plan: 'industrial',
    params: idParam,
    body: discoverPatternsBody,
    example: {},
    success: { status: 202, description: 'The job', schema: wrapped('job', patternJob) },
    errors: [404, 422],
  },
  'GET /api/devices/{id}/patterns/jobs/{job_id}': {
    function: 'patterns',
    summary: 'A discovery job: pending, running, done (with what it found) or failed (with why)',
    tag: 'patterns',
    access: 'read',
    plan: 'industrial',
    params: patternJobParams,
    success: { status: 200, description: 'The job', schema: wrapped('job', patternJob) },
    errors: [404],
  },
  'GET /api/devices/{id}/patterns': {
    function: 'patterns',
    summary: "A device's discovered patterns, and the one it is in now",
    description:
      "`current_pattern` is the mode of the device's latest complete window: a pattern, or `novel: true` when the window is farther from every pattern than its novelty distance (a mode never seen in the history); null without patterns or readings in that window.",
    tag: 'patterns',
    access: 'read',
    plan: 'industrial',
    params: idParam,
    success: { status: 200, description: 'Patterns', schema: patternsResponse },
    errors: [404],
  },
  'PATCH /api/devices/{id}/patterns/{pattern_id}': {
    function: 'patterns',
    summary: 'Name a pattern ("start-up", "idle", "full load"), or remove its name',
    tag: 'patterns',
    access: 'write',
    plan: 'industrial',
    params: patternParams,
    body: patternLabelBody,
    example: { label: 'full load' },
    success: { status: 200, description: 'The pattern', schema: wrapped('pattern', pattern) },
    errors: [404],
  },
  'GET /api/devices/{id}/patterns/timeline': {
    function: 'patterns',
    summary: "The device's mode over a range, stretch by stretch (bands on its charts)",
    description:
      "Each window of the range is recognised as the pattern it lies deepest within (the smallest distance over that pattern's novelty distance), or as novel when that is above 1; back-to-back windows in the same mode form one segment. Windows without readings have no segment. The range may hold at most 5,000 windows.",
    tag: 'patterns',
    access: 'read',
    plan: 'industrial',
    params: idParam,
    query: patternTimelineQuery,
    success: { status: 200, description: 'Segments, oldest first', schema: patternTimeline },
    errors: [404],
  },
  'GET /api/openapi.json': {
    function: 'docs',
    summary: 'This document',
    tag: 'meta',
    access: 'public',
    success: {
      status: 200,
      description: 'OpenAPI 3.1',
      schema: openApiShape(),
    },
    headers: { 'cache-control': 'public, max-age=300' },
  },
} as const satisfies Record<string, RouteDefinition>;

export type RouteTable = typeof routeTable;
export type RouteKey = keyof RouteTable;
/** The serverless.yml functions that serve HTTP routes. */
export type HttpFunction = RouteTable[RouteKey]['function'];

/** The table's routes one function serves. */
export function routesOf(fn: HttpFunction): RouteKey[] {
  return (Object.keys(routeTable) as RouteKey[]).filter((key) => routeTable[key].function === fn);
}

/** `{ <key>: [item, ...] }`, the shape of every list answer. */
function objectOf<K extends string, S extends z.ZodType>(key: K, item: S) {
  return z.object({ [key]: z.array(item) } as { [P in K]: z.ZodArray<S> });
}

/** `{ <key>: item }`, the shape of every single-resource answer but the device's detail. */
function wrapped<K extends string, S extends z.ZodType>(key: K, item: S) {
  return z.looseObject({ [key]: item } as { [P in K]: S });
}

function openApiShape() {
  return z.looseObject({ openapi: z.string() });
}
