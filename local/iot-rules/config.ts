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

/** One `iot` event of one function. */
export interface RuleDefinition {
  /** `<function>#<n>`, n counting the function's iot events from 1; or the event's `name`. */
  id: string;
  /** The function's key under `functions` in serverless.yml. */
  functionKey: string;
  /** The deployed (and serverless-offline) function name, `<service>-<stage>-<key>` by default. */
  functionName: string;
  rule: IotRule;
}

/**
 * Bytes of rule outputs per batched invocation, at most: synchronous Lambda invocations (and
 * serverless-offline's Invoke API) refuse requests over 6 MB.
 */
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;

export interface BatchSettings {
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

  const batch = new Map<string, BatchSettings>();
  const custom = isObject(document.custom) ? document.custom.iotRulesEmulator : undefined;
  const batchSection = isObject(custom) ? custom.batch : undefined;
  if (batchSection !== undefined) {
    if (!isObject(batchSection)) {
      throw new Error(`${file}: custom.iotRulesEmulator.batch must be a mapping`);
    }
    for (const [functionKey, settings] of Object.entries(batchSection)) {
      const where = `${file}: custom.iotRulesEmulator.batch.${functionKey}`;
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
