/**
 * AWS IoT Core policy evaluation, written from AWS's documentation because AWS IoT cannot
 * run here. The documents and what each contributes:
 *
 * - "AWS IoT Core policy actions" (iot/latest/developerguide/iot-policy-actions): iot:Connect
 *   is checked on every CONNECT against `client/<client id>`; iot:Publish on every PUBLISH
 *   against `topic/<topic>`; iot:RetainPublish for a PUBLISH with RETAIN set, which also
 *   needs iot:Publish; iot:Subscribe on every SUBSCRIBE against `topicfilter/<filter>`;
 *   iot:Receive on every delivery to the client against `topic/<topic>`.
 * - "Retained message policy examples" (retained-message-policy-examples): a retained Will
 *   message needs iot:Publish and iot:RetainPublish on the Will topic, at connect time.
 * - "Connect policy examples" (connect-policy): iot:ConnectAttributes (`LastWill`,
 *   `PersistentConnect`) and iot:LastWillTopic as condition keys of iot:Connect.
 * - "AWS IoT Core policy variables" (iot-policy-variables) and "Publish/Subscribe policy
 *   examples" (pub-sub-policy): `*` matches any characters (including `/`), `?` exactly one;
 *   MQTT's `+` and `#` are literal characters in a policy; `$(*)`, `$(?)` and `$($)` stand
 *   for the literal characters; `${iot:ClientId}` is the connection's client id.
 * - "Thing policy variables" (thing-policy-variables): with non-exclusive thing association
 *   the thing name is taken from the client id, which must exactly match a thing attached
 *   to the presented certificate; `iot:Connection.Thing.IsAttached` says whether it is.
 * - IAM "The difference between explicit and implicit denies" and "IAM policy elements:
 *   Variables and tags": an explicit Deny wins over any Allow, no Allow means deny; a
 *   variable AWS cannot resolve makes the statement that holds it not apply.
 *
 * Anything in a policy this evaluator does not model (NotAction, NotResource, an unknown
 * condition operator or variable) throws instead of guessing.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

// js-yaml (a devDependency) ships no type declarations; load() is the one call used.
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

type Json = any;

const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * The device policy resource as serverless.yml includes it (infra/iot-device-policy.yml),
 * with the one osls variable it uses, the stage, resolved as `osls package` resolves it.
 */
export function devicePolicyResource(stage: string): Promise<Json> {
  return iotResource('infra/iot-device-policy.yml', 'IotDevicePolicy', stage);
}

/** The claim policy of fleet provisioning (infra/iot-fleet-provisioning.yml), likewise. */
export function claimPolicyResource(stage: string): Promise<Json> {
  return iotResource('infra/iot-fleet-provisioning.yml', 'IotClaimPolicy', stage);
}

/** A resource of one of infra/'s IoT files with the stage resolved as `osls package` does. */
export async function iotResource(file: string, name: string, stage: string): Promise<Json> {
  const text = await readFile(path.join(repoRoot, file), 'utf8');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the osls variable, literally
  const resource = (yaml.load(text.replaceAll('${sls:stage}', stage)) as Json).Resources[name];
  const leftover = /\$\{(?!!|AWS::)[^}]*\}/.exec(JSON.stringify(resource));
  if (leftover) throw new Error(`unresolved osls variable ${leftover[0]} in ${name}`);
  return resource;
}

export interface PseudoParameters {
  partition: string;
  region: string;
  accountId: string;
}

/** Resolves CloudFormation's Fn::Sub (both forms) with the pseudo parameters, as CloudFormation does. */
export function resolveFnSub(value: Json, pseudo: PseudoParameters): string {
  if (typeof value === 'string') return value;
  const sub = value?.['Fn::Sub'];
  if (sub === undefined) throw new Error(`unsupported intrinsic: ${JSON.stringify(value)}`);
  const [text, variables] = Array.isArray(sub) ? sub : [sub, {}];
  const builtIn: Record<string, string> = {
    'AWS::Partition': pseudo.partition,
    'AWS::Region': pseudo.region,
    'AWS::AccountId': pseudo.accountId,
  };
  return (text as string).replace(/\$\{(!?)([^}]*)\}/g, (_whole, bang: string, name: string) => {
    // ${!Literal} is how Fn::Sub writes a literal ${Literal}.
    if (bang) return `\${${name}}`;
    const replacement = variables[name] ?? builtIn[name];
    if (typeof replacement !== 'string') throw new Error(`Fn::Sub cannot resolve \${${name}}`);
    return replacement;
  });
}

/** A policy document with every Resource (and condition value) resolved to plain strings. */
export function resolvePolicyDocument(document: Json, pseudo: PseudoParameters): Json {
  const resolveDeep = (value: Json): Json =>
    Array.isArray(value)
      ? value.map(resolveDeep)
      : value && typeof value === 'object' && 'Fn::Sub' in value
        ? resolveFnSub(value, pseudo)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveDeep(v)]))
          : value;
  return resolveDeep(document);
}

/** What AWS IoT knows about a connection when it evaluates the policy. */
export interface ConnectionContext {
  clientId: string;
  /** Things in the registry, each with the certificates attached to it. */
  registry: Map<string, Set<string>>;
  /** The certificate the client presented. */
  certificate: string;
  /** iot:ConnectAttributes and iot:LastWillTopic: present on the CONNECT request only. */
  connectAttributes?: string[];
  lastWillTopicArn?: string;
}

export interface AuthorizationRequest {
  action: string;
  resource: string;
}

export type Decision = 'allow' | 'explicit-deny' | 'implicit-deny';

const UNRESOLVED = Symbol('unresolved');

function variables(context: ConnectionContext): Record<string, string | typeof UNRESOLVED> {
  // Non-exclusive association: the thing is the one named by the client id.
  const thing = context.registry.get(context.clientId);
  return {
    'iot:ClientId': context.clientId,
    'iot:Connection.Thing.ThingName': thing ? context.clientId : UNRESOLVED,
    'iot:Connection.Thing.IsAttached': thing?.has(context.certificate) ? 'true' : 'false',
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * A policy string (Resource or an ArnLike/StringLike value) as a regular expression:
 * variables substituted as literal text, `*` and `?` as wildcards, everything else literal.
 * Returns UNRESOLVED when a variable has no value for this connection.
 */
function patternFor(
  pattern: string,
  values: Record<string, string | typeof UNRESOLVED>,
  wildcards: boolean,
): RegExp | typeof UNRESOLVED {
  let source = '';
  let unresolved = false;
  const tokens = pattern.split(/(\$\{[^}]*\}|\$\([*?$]\)|[*?])/);
  for (const token of tokens) {
    if (token === '') continue;
    const variable = /^\$\{([^}]*)\}$/.exec(token);
    if (variable) {
      const name = variable[1] as string;
      if (!(name in values)) throw new Error(`policy variable \${${name}} is not modelled`);
      const value = values[name];
      if (value === UNRESOLVED) unresolved = true;
      else source += escapeRegExp(value as string);
    } else if (/^\$\([*?$]\)$/.test(token)) {
      source += escapeRegExp(token.charAt(2));
    } else if (token === '*' && wildcards) {
      source += '.*';
    } else if (token === '?' && wildcards) {
      source += '.';
    } else {
      source += escapeRegExp(token);
    }
  }
  return unresolved ? UNRESOLVED : new RegExp(`^${source}$`, 's');
}

function conditionHolds(
  condition: Json,
  context: ConnectionContext,
  values: Record<string, string | typeof UNRESOLVED>,
): boolean | typeof UNRESOLVED {
  const keys: Record<string, string[] | undefined> = {
    'iot:Connection.Thing.IsAttached': [values['iot:Connection.Thing.IsAttached'] as string],
    'iot:ClientId': [context.clientId],
    'iot:ConnectAttributes': context.connectAttributes,
    'iot:LastWillTopic': context.lastWillTopicArn ? [context.lastWillTopicArn] : undefined,
  };
  for (const [operator, tests] of Object.entries(condition ?? {})) {
    const [qualifier, bare] = operator.includes(':')
      ? (operator.split(':') as [string, string])
      : ['', operator];
    for (const [key, expected] of Object.entries(tests as Record<string, unknown>)) {
      if (!(key in keys)) throw new Error(`condition key ${key} is not modelled`);
      const actual = keys[key];
      const patterns = [expected].flat().map((value) => {
        const wildcards = bare === 'StringLike' || bare === 'ArnLike';
        if (bare === 'Bool') return new RegExp(`^${escapeRegExp(String(value))}$`, 'i');
        if (!['StringEquals', 'StringLike', 'ArnEquals', 'ArnLike'].includes(bare)) {
          throw new Error(`condition operator ${operator} is not modelled`);
        }
        return patternFor(String(value), values, wildcards);
      });
      if (patterns.includes(UNRESOLVED)) return UNRESOLVED;
      const matchesAny = (item: string) => patterns.some((p) => (p as RegExp).test(item));
      if (qualifier === 'ForAllValues') {
        // True when every value in the request matches (and vacuously when there is none).
        if (!(actual ?? []).every(matchesAny)) return false;
      } else if (qualifier === 'ForAnyValue') {
        if (!(actual ?? []).some(matchesAny)) return false;
      } else if (qualifier === '') {
        // A single-valued operator on a missing key does not match.
        if (actual?.length !== 1 || !matchesAny(actual[0] as string)) return false;
      } else {
        throw new Error(`condition qualifier ${qualifier} is not modelled`);
      }
    }
  }
  return true;
}

/** The decision for one request, by IAM's order: explicit Deny, then Allow, else deny. */
export function evaluate(
  policy: Json,
  context: ConnectionContext,
  request: AuthorizationRequest,
): Decision {
  const values = variables(context);
  let allowed = false;
  for (const statement of [policy.Statement].flat()) {
    for (const unsupported of ['NotAction', 'NotResource', 'NotPrincipal']) {
      if (unsupported in statement) throw new Error(`${unsupported} is not modelled`);
    }
    const actions: string[] = [statement.Action].flat();
    const actionMatches = actions.some((action) =>
      new RegExp(`^${action.split('*').map(escapeRegExp).join('.*')}$`, 'i').test(request.action),
    );
    if (!actionMatches) continue;
    const resources: string[] = [statement.Resource].flat();
    const resourceMatches = resources.some((resource) => {
      if (typeof resource !== 'string') throw new Error('resolve the policy document first');
      const pattern = patternFor(resource, values, true);
      return pattern !== UNRESOLVED && pattern.test(request.resource);
    });
    if (!resourceMatches) continue;
    const holds = conditionHolds(statement.Condition, context, values);
    if (holds !== true) continue;
    if (statement.Effect === 'Deny') return 'explicit-deny';
    if (statement.Effect !== 'Allow') throw new Error(`unknown Effect ${statement.Effect}`);
    allowed = true;
  }
  return allowed ? 'allow' : 'implicit-deny';
}

/** One MQTT operation of a client, as the firmware's recorder prints them. */
export type MqttOperation =
  | {
      op: 'connect';
      client_id: string;
      clean_session: boolean;
      will_topic?: string;
      will_retain?: boolean;
    }
  | { op: 'publish'; topic: string; retain: boolean }
  | { op: 'subscribe'; filter: string }
  | { op: 'receive'; topic: string };

/** The authorisation requests AWS IoT makes for an operation; all must be allowed. */
export function requestsFor(operation: MqttOperation, arnPrefix: string): AuthorizationRequest[] {
  const topic = (name: string) => `${arnPrefix}:topic/${name}`;
  switch (operation.op) {
    case 'connect':
      return [
        { action: 'iot:Connect', resource: `${arnPrefix}:client/${operation.client_id}` },
        ...(operation.will_topic
          ? [{ action: 'iot:Publish', resource: topic(operation.will_topic) }]
          : []),
        ...(operation.will_topic && operation.will_retain
          ? [{ action: 'iot:RetainPublish', resource: topic(operation.will_topic) }]
          : []),
      ];
    case 'publish':
      return [
        { action: 'iot:Publish', resource: topic(operation.topic) },
        ...(operation.retain
          ? [{ action: 'iot:RetainPublish', resource: topic(operation.topic) }]
          : []),
      ];
    case 'subscribe':
      return [
        { action: 'iot:Subscribe', resource: `${arnPrefix}:topicfilter/${operation.filter}` },
      ];
    case 'receive':
      return [{ action: 'iot:Receive', resource: topic(operation.topic) }];
  }
}

/**
 * Whether AWS IoT lets a client perform an operation: every request it implies is allowed.
 * `connection` is the client's session; a CONNECT adds its connect attributes and Will topic.
 */
export function authorize(
  policy: Json,
  connection: Omit<ConnectionContext, 'connectAttributes' | 'lastWillTopicArn'>,
  operation: MqttOperation,
  arnPrefix: string,
): { allowed: boolean; decisions: Array<AuthorizationRequest & { decision: Decision }> } {
  const context: ConnectionContext =
    operation.op === 'connect'
      ? {
          ...connection,
          clientId: operation.client_id,
          connectAttributes: [
            ...(operation.will_topic ? ['LastWill'] : []),
            ...(operation.clean_session ? [] : ['PersistentConnect']),
          ],
          ...(operation.will_topic
            ? { lastWillTopicArn: `${arnPrefix}:topic/${operation.will_topic}` }
            : {}),
        }
      : connection;
  const decisions = requestsFor(operation, arnPrefix).map((request) => ({
    ...request,
    decision: evaluate(policy, context, request),
  }));
  return { allowed: decisions.every((d) => d.decision === 'allow'), decisions };
}
