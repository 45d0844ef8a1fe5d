/**
 * The only way InfluxQL text is produced in this project. Identifiers are always
 * double-quoted, strings single-quoted, both escaped; durations and times are validated.
 * Every statement that reads or moves tenant data goes through `tenantSelect` or
 * `tenantDelete`, whose `tenantId` is required and always lands in the WHERE clause: there is
 * no way to pass raw WHERE text. The few tenant-wide statements (schema, rollups) are built
 * by dedicated functions that take no user input beyond validated names and times.
 */

declare const influxqlBrand: unique symbol;
/** InfluxQL text built by this module (the client accepts nothing else). */
export type InfluxQL = string & { readonly [influxqlBrand]: true };

const brand = (text: string) => text as InfluxQL;

export class InfluxQLError extends Error {
  override readonly name = 'InfluxQLError';
}

function escapeQuoted(text: string, quote: '"' | "'"): string {
  let out = '';
  for (const char of text) {
    if (char === '\\' || char === quote) out += `\\${char}`;
    // The scanner refuses a raw line break inside a quoted token but decodes `\n`.
    else if (char === '\n') out += '\\n';
    else out += char;
  }
  return out;
}

/** A double-quoted identifier: database, retention policy, measurement, tag or field key. */
export function ident(name: string): string {
  if (name === '') throw new InfluxQLError('an identifier cannot be empty');
  return `"${escapeQuoted(name, '"')}"`;
}

export function stringLiteral(text: string): string {
  return `'${escapeQuoted(text, "'")}'`;
}

export const DURATION_PATTERN = /^[1-9][0-9]*(s|m|h|d|w)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** A validated InfluxQL duration literal such as `5m` or `30d`. */
export function duration(text: string): string {
  if (!DURATION_PATTERN.test(text)) {
    throw new InfluxQLError(
      `invalid duration ${JSON.stringify(text)}: expected e.g. 30s, 5m, 1h, 7d`,
    );
  }
  return text;
}

export function durationMs(text: string): number {
  duration(text);
  const unit = text.slice(-1) as keyof typeof UNIT_MS;
  return Number(text.slice(0, -1)) * UNIT_MS[unit];
}

/** `30d` style, or `INF` for a policy that keeps data forever. */
export function policyDuration(text: string): string {
  return text === 'INF' ? 'INF' : duration(text);
}

export function policyDurationMs(text: string): number {
  return text === 'INF' ? Number.POSITIVE_INFINITY : durationMs(text);
}

/** A Go duration as `SHOW RETENTION POLICIES` prints it (`720h0m0s`, `0s` for INF). */
export function goDurationMs(text: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const match = /^([0-9.]+)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!match) throw new InfluxQLError(`unparseable duration ${JSON.stringify(text)}`);
    total += Number(match[1]) * (units[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return total;
}

/** A time as an exact epoch-milliseconds literal. */
export function timeLiteral(time: Date | number): string {
  const ms = typeof time === 'number' ? time : time.getTime();
  if (!Number.isSafeInteger(ms)) throw new InfluxQLError(`invalid time ${String(time)}`);
  return `${ms}ms`;
}

export interface Source {
  database: string;
  retentionPolicy: string;
  measurement: string;
}

export function qualified(source: Source): string {
  return `${ident(source.database)}.${ident(source.retentionPolicy)}.${ident(source.measurement)}`;
}

export type Aggregate = 'mean' | 'min' | 'max' | 'count' | 'sum' | 'last' | 'first';
const AGGREGATES: ReadonlySet<string> = new Set([
  'mean',
  'min',
  'max',
  'count',
  'sum',
  'last',
  'first',
]);

export type FieldExpr =
  | { field: string }
  | { fn: Aggregate; field: string }
  | { divide: [FieldExpr, FieldExpr] }
  | { all: true };

export interface Projection {
  expr: FieldExpr;
  as?: string;
}

function expression(expr: FieldExpr): string {
  if ('all' in expr) return '*';
  if ('divide' in expr) return `${expression(expr.divide[0])} / ${expression(expr.divide[1])}`;
  if ('fn' in expr) {
    if (!AGGREGATES.has(expr.fn)) throw new InfluxQLError(`unknown function ${expr.fn}`);
    // `count(*)`: every field at once.
    return `${expr.fn}(${expr.field === '*' ? '*' : ident(expr.field)})`;
  }
  return ident(expr.field);
}

function projections(list: Projection[]): string {
  if (list.length === 0) throw new InfluxQLError('a SELECT needs at least one field');
  return list
    .map((p) => (p.as ? `${expression(p.expr)} AS ${ident(p.as)}` : expression(p.expr)))
    .join(', ');
}

export interface TimeRange {
  /** Inclusive. */
  from?: Date | number;
  /** Exclusive unless `toInclusive`. */
  to?: Date | number;
  /** `to` includes its whole millisecond: readings without a device time are stored with
   * sub-millisecond offsets, and a range read page by page must not fall between pages. */
  toInclusive?: boolean;
}

function timeConditions(range: TimeRange | undefined): string[] {
  if (!range) return [];
  const conditions: string[] = [];
  if (range.from !== undefined) conditions.push(`time >= ${timeLiteral(range.from)}`);
  if (range.to !== undefined) {
    const to = typeof range.to === 'number' ? range.to : range.to.getTime();
    conditions.push(`time < ${timeLiteral(range.toInclusive ? to + 1 : to)}`);
  }
  return conditions;
}

/** Tag equality (`string`) or membership (`string[]`, OR-ed). */
export type TagFilter = Record<string, string | readonly string[]>;

function tagConditions(tags: TagFilter | undefined): string[] {
  if (!tags) return [];
  return Object.entries(tags).map(([key, wanted]) => {
    if (typeof wanted === 'string') return `${ident(key)} = ${stringLiteral(wanted)}`;
    if (wanted.length === 0)
      throw new InfluxQLError(`an empty list of ${key} values matches nothing`);
    const alternatives = wanted.map((value) => `${ident(key)} = ${stringLiteral(value)}`);
    return alternatives.length === 1
      ? (alternatives[0] as string)
      : `(${alternatives.join(' OR ')})`;
  });
}

function tenantCondition(tenantId: number): string {
  if (!Number.isSafeInteger(tenantId) || tenantId <= 0) {
    throw new InfluxQLError(`invalid tenant id ${String(tenantId)}`);
  }
  return `${ident('tenant_id')} = ${stringLiteral(String(tenantId))}`;
}

function whereClause(conditions: string[]): string {
  return conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : '';
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new InfluxQLError(`invalid ${what} ${value}`);
  return value;
}

export interface GroupBy {
  /** `GROUP BY time(<every>)` */
  every?: string;
  /** Tag keys, or `*` for every tag (keeps series apart, e.g. in SELECT ... INTO). */
  tags?: readonly string[] | '*';
}

function groupByClause(groupBy: GroupBy | undefined): string {
  if (!groupBy) return '';
  const parts: string[] = [];
  if (groupBy.every !== undefined) parts.push(`time(${duration(groupBy.every)})`);
  if (groupBy.tags === '*') parts.push('*');
  else if (groupBy.tags) parts.push(...groupBy.tags.map(ident));
  return parts.length > 0 ? ` GROUP BY ${parts.join(', ')}` : '';
}

export interface TenantSelect {
  /** Required: the statement can only ever see this tenant's points. */
  tenantId: number;
  from: Source;
  select: Projection[];
  tags?: TagFilter;
  time?: TimeRange;
  groupBy?: GroupBy;
  fill?: 'none' | 'null' | 'previous' | 'linear';
  into?: Source;
  limit?: number;
  orderDesc?: boolean;
}

/** The tenant first, then the tags and the time: a query cannot name its tenant as a tag. */
function tenantConditions(spec: { tenantId: number; tags?: TagFilter; time?: TimeRange }) {
  if (spec.tags && 'tenant_id' in spec.tags) {
    throw new InfluxQLError('tenant_id comes from tenantId, not from tags');
  }
  return [
    tenantCondition(spec.tenantId),
    ...tagConditions(spec.tags),
    ...timeConditions(spec.time),
  ];
}

export function tenantSelect(spec: TenantSelect): InfluxQL {
  const conditions = tenantConditions(spec);
  let text = `SELECT ${projections(spec.select)}`;
  if (spec.into) text += ` INTO ${qualified(spec.into)}`;
  text += ` FROM ${qualified(spec.from)}${whereClause(conditions)}${groupByClause(spec.groupBy)}`;
  if (spec.fill) text += ` fill(${spec.fill})`;
  if (spec.orderDesc) text += ' ORDER BY time DESC';
  if (spec.limit !== undefined) text += ` LIMIT ${positiveInteger(spec.limit, 'limit')}`;
  return brand(text);
}

export interface TenantDelete {
  tenantId: number;
  /** DELETE acts on every retention policy of the database: InfluxQL cannot target one. */
  database: string;
  measurement?: string;
  tags?: TagFilter;
  time?: TimeRange;
}

export function tenantDelete(spec: TenantDelete): InfluxQL {
  const conditions = tenantConditions(spec);
  const from = spec.measurement ? ` FROM ${ident(spec.measurement)}` : '';
  return brand(`DELETE${from}${whereClause(conditions)}`);
}

export function createDatabase(name: string): InfluxQL {
  return brand(`CREATE DATABASE ${ident(name)}`);
}

export function dropDatabase(name: string): InfluxQL {
  return brand(`DROP DATABASE ${ident(name)}`);
}

/**
 * One point of each measurement in a retention policy, whatever its tenant: only a restore
 * uses it, to wait until InfluxDB has reopened every restored shard.
 */
export function anyPointOfPolicy(database: string, retentionPolicy: string): InfluxQL {
  return brand(`SELECT * FROM ${ident(database)}.${ident(retentionPolicy)}./.*/ LIMIT 1`);
}

export function showRetentionPolicies(database: string): InfluxQL {
  return brand(`SHOW RETENTION POLICIES ON ${ident(database)}`);
}

export interface RetentionPolicySpec {
  database: string;
  name: string;
  /** `30d` or `INF`. */
  duration: string;
  isDefault?: boolean;
}

export function createRetentionPolicy(spec: RetentionPolicySpec): InfluxQL {
  return brand(
    `CREATE RETENTION POLICY ${ident(spec.name)} ON ${ident(spec.database)} DURATION ` +
      `${policyDuration(spec.duration)} REPLICATION 1${spec.isDefault ? ' DEFAULT' : ''}`,
  );
}

export function alterRetentionPolicy(spec: RetentionPolicySpec): InfluxQL {
  return brand(
    `ALTER RETENTION POLICY ${ident(spec.name)} ON ${ident(spec.database)} DURATION ` +
      `${policyDuration(spec.duration)}${spec.isDefault ? ' DEFAULT' : ''}`,
  );
}

export function showContinuousQueries(): InfluxQL {
  return brand('SHOW CONTINUOUS QUERIES');
}

export function dropContinuousQuery(database: string, name: string): InfluxQL {
  return brand(`DROP CONTINUOUS QUERY ${ident(name)} ON ${ident(database)}`);
}

/** Several statements in one request; the server answers each in order. */
export function statements(list: readonly InfluxQL[]): InfluxQL {
  if (list.length === 0) throw new InfluxQLError('no statements');
  return brand(list.join('; '));
}
