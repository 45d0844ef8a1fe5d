import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type IotRule, parseIotSql, SUPPORTED_SQL_VERSION } from './sql.ts';

// js-yaml ships no type declarations and is present through osls; this is the one call used.
interface JsYaml {
  load(text: string, options: { filename: string; schema: unknown }): unknown;
  Type: new (
    tag: string,
    options: { kind: 'scalar' | 'sequence' | 'mapping'; construct(data: unknown): unknown },
  ) => unknown;
  DEFAULT_SCHEMA: { extend(types: unknown[]): unknown };
}
const yaml = createRequire(import.meta.url)('js-yaml') as JsYaml;

// serverless.yml may carry CloudFormation short-form intrinsics under `resources`; they must
// parse (as their long form) even though the emulator never reads them.
const CLOUDFORMATION_TAGS = [
  'Ref',
  'Condition',
  'Base64',
  'Cidr',
  'FindInMap',
  'GetAtt',
  'GetAZs',
  'ImportValue',
  'Join',
  'Select',
  'Split',
  'Sub',
  'Transform',
  'And',
  'Equals',
  'If',
  'Not',
  'Or',
];
const serverlessYamlSchema = yaml.DEFAULT_SCHEMA.extend(
  CLOUDFORMATION_TAGS.flatMap((name) =>
    (['scalar', 'sequence', 'mapping'] as const).map(
      (kind) =>
        new yaml.Type(`!${name}`, {
          kind,
          construct: (data) => ({
            [name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`]: data,
          }),
        }),
    ),
  ),
);

/**
 * A topic rule whose action puts its output on a Kinesis stream that a function reads
 * through an event source mapping (`stream` event), and that mapping's settings.
 */
export interface StreamSettings {
  /** The stream's logical id in the template. */
  resource: string;
  /** The partition key: an IoT SQL expression evaluated on each message. */
  partitionKey: IotRule;
  /** BatchSize (AWS default for Kinesis: 100). */
  batchSize: number;
  /** MaximumBatchingWindowInSeconds, in ms. */
  windowMs: number;
  /**
   * Read through an enhanced fan-out consumer (the event's `consumer`), which pushes records
   * as they arrive, as the emulator delivers them; otherwise a standard iterator, which on
   * AWS polls a caught-up shard once a second (not emulated: the configuration warns).
   */
  enhancedFanOut: boolean;
  /** Batches of the stream in flight at once (ParallelizationFactor, with one shard locally). */
  parallelizationFactor: number;
  /** MaximumRetryAttempts; -1 is unlimited. */
  maxRetryAttempts: number;
  /** MaximumRecordAgeInSeconds, in ms; -1 is unlimited. */
  maxRecordAgeMs: number;
  /** FunctionResponseTypes holds ReportBatchItemFailures. */
  reportBatchItemFailures: boolean;
}

/** One `iot` event of one function, or one rule of `custom.iotRules.stream`. */
export interface RuleDefinition {
  /** `<function>#<n>`, n counting the function's iot events from 1; or the event's `name`. */
  id: string;
  /** The function's key under `functions` in serverless.yml. */
  functionKey: string;
  /** The deployed (and serverless-offline) function name, `<service>-<stage>-<key>` by default. */
  functionName: string;
  rule: IotRule;
  /** Set when the rule writes to a stream that the function reads. */
  stream?: StreamSettings;
}

/**
 * Bytes of rule outputs per batched invocation, at most: synchronous Lambda invocations (and
 * serverless-offline's Invoke API) refuse requests over 6 MB.
 */
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;

export interface BatchSettings {
  /** Set for a function that reads a stream: the invocation is a Kinesis event. */
  stream?: StreamSettings;
  maxRecords: number;
  maxWaitMs: number;
  /**
   * Bytes of rule outputs per invocation, at most; never more than MAX_BATCH_BYTES (the
   * Lambda request limit). A lone larger output still goes, alone.
   */
  maxBytes: number;
  /** Batches of this function being invoked at once. */
  maxInFlight?: number;
}

export interface IotRulesConfig {
  service: string;
  stage: string;
  rules: RuleDefinition[];
  /** Functions invoked with arrays of rule outputs, by function key. */
  batch: Map<string, BatchSettings>;
  /** Non-fatal remarks about the configuration, for the log. */
  warnings: string[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Replaces the few Serverless variables a rule plausibly contains. Anything else would need
 * the framework's full resolver; the emulator refuses it rather than guess.
 */
function resolveVariables(text: string, where: string, vars: { stage: string; service: string }) {
  return text.replace(/\$\{([^}]+)\}/g, (whole, body: string) => {
    const name = body.split(',')[0]?.trim();
    if (name === 'sls:stage' || name === 'opt:stage' || name === 'self:provider.stage') {
      return vars.stage;
    }
    if (name === 'self:service') return vars.service;
    throw new Error(
      `${where}: the IoT rules emulator cannot resolve ${whole} (it knows \${sls:stage}, \${opt:stage}, \${self:provider.stage} and \${self:service})`,
    );
  });
}

function positiveInteger(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`${where} must be a whole number of 1 or more, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** Reads the `iot` events of every function in serverless.yml and the emulator's settings. */
export async function loadIotRulesConfig(options: {
  serverlessYmlPath: string;
  stage: string;
  service?: string;
}): Promise<IotRulesConfig> {
  const file = options.serverlessYmlPath;
  const document = yaml.load(await readFile(file, 'utf8'), {
    filename: file,
    schema: serverlessYamlSchema,
  });
  if (!isObject(document)) throw new Error(`${file}: not a YAML mapping`);
  const declaredService = isObject(document.service) ? document.service.name : document.service;
  const service = options.service ?? declaredService;
  if (typeof service !== 'string' || service.includes('${')) {
    throw new Error(`${file}: 'service' must be a plain name, or pass the service name explicitly`);
  }
  const vars = { stage: options.stage, service };
  const functions = document.functions ?? {};
  if (!isObject(functions)) throw new Error(`${file}: 'functions' must be a mapping`);

  const rules: RuleDefinition[] = [];
  const warnings: string[] = [];
  for (const [functionKey, definition] of Object.entries(functions)) {
    if (!isObject(definition)) continue;
    let functionName = `${service}-${options.stage}-${functionKey}`;
    if (typeof definition.name === 'string') {
      functionName = resolveVariables(definition.name, `functions.${functionKey}.name`, vars);
    }
    const events = Array.isArray(definition.events) ? definition.events : [];
    let count = 0;
    for (const event of events) {
      if (!isObject(event) || !('iot' in event)) continue;
      count += 1;
      const where = `functions.${functionKey}.events[iot #${count}]`;
      const iot = event.iot;
      if (!isObject(iot) || typeof iot.sql !== 'string') {
        throw new Error(`${file}: ${where} needs an 'sql' string`);
      }
      const enabled = typeof iot.enabled === 'string' ? iot.enabled !== 'false' : iot.enabled;
      if (enabled === false) continue;
      const sqlVersion = iot.sqlVersion;
      if (sqlVersion === undefined) {
        warnings.push(
          `${where} has no sqlVersion: AWS would evaluate it as SQL 2015-10-08, the emulator as ${SUPPORTED_SQL_VERSION}; set sqlVersion: '${SUPPORTED_SQL_VERSION}'`,
        );
      } else if (sqlVersion !== SUPPORTED_SQL_VERSION) {
        throw new Error(
          `${file}: ${where} has sqlVersion ${JSON.stringify(sqlVersion)}; the emulator implements '${SUPPORTED_SQL_VERSION}' only`,
        );
      }
      const sql = resolveVariables(iot.sql, where, vars);
      let rule: IotRule;
      try {
        rule = parseIotSql(sql);
      } catch (error) {
        throw new Error(`${file}: ${where}: ${(error as Error).message}`, { cause: error });
      }
      const id =
        typeof iot.name === 'string'
          ? resolveVariables(iot.name, `${where}.name`, vars)
          : `${functionKey}#${count}`;
      rules.push({ id, functionKey, functionName, rule });
    }
  }

  const custom = isObject(document.custom) ? document.custom.iotRulesEmulator : undefined;
  const batchSection = isObject(custom) ? custom.batch : undefined;
  const batch = new Map<string, BatchSettings>();
  const iotRules = isObject(document.custom) ? document.custom.iotRules : undefined;
  const streamSection = isObject(iotRules) ? iotRules.stream : undefined;
  if (streamSection !== undefined) {
    const streamRules = loadStreamRules(file, streamSection, functions, {
      ...vars,
      stage: options.stage,
    });
    for (const definition of streamRules.rules) {
      if (rules.some((rule) => rule.functionKey === definition.functionKey)) {
        throw new Error(
          `${file}: functions.${definition.functionKey} reads the rules' stream and has iot events too; give it one or the other`,
        );
      }
    }
    rules.push(...streamRules.rules);
    const maxBytes =
      isObject(batchSection) && isObject(batchSection[streamRules.functionKey])
        ? (batchSection[streamRules.functionKey] as Json).maxBytes
        : undefined;
    const where = `${file}: custom.iotRulesEmulator.batch.${streamRules.functionKey}`;
    const bytes =
      maxBytes === undefined ? MAX_BATCH_BYTES : positiveInteger(maxBytes, `${where}.maxBytes`);
    if (bytes > MAX_BATCH_BYTES) {
      throw new Error(`${where}.maxBytes must be at most ${MAX_BATCH_BYTES}`);
    }
    const { settings } = streamRules;
    if (!settings.enhancedFanOut) {
      // The emulator hands records to the batchers as the rules put them on the stream: an
      // enhanced fan-out consumer's push (AWS Lambda developer guide, "Using Lambda with
      // Kinesis Data Streams"). A standard iterator's wait is not emulated.
      warnings.push(
        `functions.${streamRules.functionKey} reads ${settings.resource} with a standard iterator, which on AWS polls a caught-up shard once a second; the emulator delivers records as they arrive (an enhanced fan-out consumer's push), so latencies measured here are lower than on AWS`,
      );
    }
    batch.set(streamRules.functionKey, {
      stream: settings,
      maxRecords: settings.batchSize,
      maxWaitMs: settings.windowMs,
      maxBytes: bytes,
      maxInFlight: settings.parallelizationFactor,
    });
  }
  if (batchSection !== undefined) {
    if (!isObject(batchSection)) {
      throw new Error(`${file}: custom.iotRulesEmulator.batch must be a mapping`);
    }
    for (const [functionKey, settings] of Object.entries(batchSection)) {
      const where = `${file}: custom.iotRulesEmulator.batch.${functionKey}`;
      const streamBatch = batch.get(functionKey);
      if (streamBatch?.stream) {
        // The event source mapping sets the rest; only the local body size may be given.
        const extra = Object.keys(isObject(settings) ? settings : {}).filter(
          (k) => k !== 'maxBytes',
        );
        if (extra.length > 0) {
          throw new Error(
            `${where}: ${functionKey} reads a stream, whose event sets ${extra.join(', ')}; only maxBytes may be given here`,
          );
        }
        continue;
      }
      if (!rules.some((rule) => rule.functionKey === functionKey)) {
        throw new Error(`${where}: no enabled iot event targets a function '${functionKey}'`);
      }
      if (!isObject(settings)) throw new Error(`${where} must be a mapping`);
      const maxWaitMs = settings.maxWaitMs ?? 0;
      if (typeof maxWaitMs !== 'number' || !Number.isFinite(maxWaitMs) || maxWaitMs < 0) {
        throw new Error(`${where}.maxWaitMs must be a number of milliseconds (0 or more)`);
      }
      const maxBytes =
        settings.maxBytes === undefined
          ? MAX_BATCH_BYTES
          : positiveInteger(settings.maxBytes, `${where}.maxBytes`);
      if (maxBytes > MAX_BATCH_BYTES) {
        throw new Error(
          `${where}.maxBytes must be at most ${MAX_BATCH_BYTES}: synchronous Lambda invocations refuse requests over 6 MB`,
        );
      }
      batch.set(functionKey, {
        maxRecords: positiveInteger(settings.maxRecords, `${where}.maxRecords`),
        maxWaitMs,
        maxBytes,
        maxInFlight:
          settings.maxInFlight === undefined
            ? undefined
            : positiveInteger(settings.maxInFlight, `${where}.maxInFlight`),
      });
    }
  }
  return { service, stage: options.stage, rules, batch, warnings };
}

function integerSetting(value: unknown, fallback: number, where: string, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new Error(
      `${where} must be a whole number of ${min} or more, not ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * `custom.iotRules.stream`: topic rules that put their output on a Kinesis stream (a
 * resource of the template), and the one function whose `stream` event reads it.
 */
function loadStreamRules(
  file: string,
  section: unknown,
  functions: Json,
  vars: { stage: string; service: string },
): { functionKey: string; rules: RuleDefinition[]; settings: StreamSettings } {
  const where = `${file}: custom.iotRules.stream`;
  if (!isObject(section) || typeof section.resource !== 'string' || !isObject(section.rules)) {
    throw new Error(`${where} needs 'resource' (the stream's logical id) and 'rules'`);
  }
  const resource = section.resource;
  if (typeof section.partitionKey !== 'string') {
    throw new Error(`${where}.partitionKey must be an IoT SQL expression, e.g. topic(2)`);
  }
  const readers: Array<{ functionKey: string; functionName: string; event: Json }> = [];
  for (const [functionKey, definition] of Object.entries(functions)) {
    if (!isObject(definition)) continue;
    const functionName =
      typeof definition.name === 'string'
        ? resolveVariables(definition.name, `functions.${functionKey}.name`, vars)
        : `${vars.service}-${vars.stage}-${functionKey}`;
    for (const event of Array.isArray(definition.events) ? definition.events : []) {
      const stream = isObject(event) ? event.stream : undefined;
      if (!isObject(stream) || !isObject(stream.arn)) continue;
      const getAtt = stream.arn['Fn::GetAtt'];
      if (Array.isArray(getAtt) && getAtt[0] === resource) {
        readers.push({ functionKey, functionName, event: stream });
      }
    }
  }
  const reader = readers[0];
  if (!reader || readers.length > 1) {
    throw new Error(
      `${where}: exactly one function's stream event must read ${resource} (Fn::GetAtt [${resource}, Arn]); found ${readers.length}`,
    );
  }
  const event = reader.event;
  const at = `${file}: functions.${reader.functionKey} stream event`;
  if (event.type !== 'kinesis') throw new Error(`${at} must have type: kinesis`);
  if (event.enabled === false) throw new Error(`${at} is disabled: nothing would read the stream`);
  const recordAge = integerSetting(
    event.maximumRecordAgeInSeconds,
    -1,
    `${at}.maximumRecordAgeInSeconds`,
    -1,
  );
  const settings: StreamSettings = {
    resource,
    partitionKey: parseIotSql(`SELECT ${section.partitionKey} AS partition_key FROM '#'`),
    batchSize: integerSetting(event.batchSize, 100, `${at}.batchSize`, 1),
    windowMs: integerSetting(event.batchWindow, 0, `${at}.batchWindow`, 0) * 1000,
    enhancedFanOut: event.consumer !== undefined && event.consumer !== false,
    parallelizationFactor: integerSetting(
      event.parallelizationFactor,
      1,
      `${at}.parallelizationFactor`,
      1,
    ),
    maxRetryAttempts: integerSetting(
      event.maximumRetryAttempts,
      -1,
      `${at}.maximumRetryAttempts`,
      -1,
    ),
    maxRecordAgeMs: recordAge === -1 ? -1 : recordAge * 1000,
    reportBatchItemFailures: event.functionResponseType === 'ReportBatchItemFailures',
  };
  const rules: RuleDefinition[] = [];
  for (const [key, rule] of Object.entries(section.rules)) {
    if (!isObject(rule) || typeof rule.name !== 'string' || typeof rule.sql !== 'string') {
      throw new Error(`${where}.rules.${key} needs 'name' and 'sql'`);
    }
    const sql = resolveVariables(rule.sql, `custom.iotRules.stream.rules.${key}.sql`, vars);
    let parsed: IotRule;
    try {
      parsed = parseIotSql(sql);
    } catch (error) {
      throw new Error(`${where}.rules.${key}: ${(error as Error).message}`, { cause: error });
    }
    rules.push({
      id: resolveVariables(rule.name, `custom.iotRules.stream.rules.${key}.name`, vars),
      functionKey: reader.functionKey,
      functionName: reader.functionName,
      rule: parsed,
      stream: settings,
    });
  }
  return { functionKey: reader.functionKey, rules, settings };
}

/**
 * Topic filters the broker itself publishes on: the devices' last wills (the status topic,
 * docs in DESIGN.md). A broker plugin sees only what clients publish, so the rules whose
 * filters can match these keep reading an MQTT session.
 */
export const BROKER_PUBLISHED_FILTERS: readonly string[] = ['devices/+/status'];

/** True when some topic could match both MQTT topic filters. */
export function filtersOverlap(a: string, b: string): boolean {
  const left = a.split('/');
  const right = b.split('/');
  for (let level = 0; ; level++) {
    const x = left[level];
    const y = right[level];
    if (x === '#' || y === '#') return true;
    if (x === undefined || y === undefined) return x === y;
    if (x !== y && x !== '+' && y !== '+') return false;
  }
}

/** The rules' filters the broker's journal carries: those no message the broker publishes itself can match. */
export function journaledFilters(config: IotRulesConfig): string[] {
  const filters = [...new Set(config.rules.map((definition) => definition.rule.from))];
  return filters.filter(
    (filter) => !BROKER_PUBLISHED_FILTERS.some((published) => filtersOverlap(filter, published)),
  );
}
