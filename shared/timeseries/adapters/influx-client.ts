import type { Agent } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { BufferPool } from '../../buffer-pool.ts';
import {
  headerOf,
  keepAliveAgent,
  type PostAnswer,
  PostTimeoutError,
  post,
} from '../../http/post.ts';
import { type SecretStore, secretField } from '../../secrets/domain/secrets.ts';
import type { LineSink, Precision } from '../line-protocol.ts';
import type { InfluxQL } from './influxql.ts';

const gzip = promisify(gzipCallback);

/**
 * A client for InfluxDB's v1 HTTP API (`/write`, `/query`, `/ping`): the API that InfluxDB
 * 1.x, 2.x (v1 compatibility), 3.x and Timestream for InfluxDB all serve.
 */

export type InfluxAuth =
  | { username: string; password: string }
  /** InfluxDB 2.x/3.x and Timestream tokens. */
  | { token: string };

/** The auth optional settings describe: a token wins over a username and password. */
export function influxAuth(settings: {
  username?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
}): InfluxAuth | undefined {
  if (settings.token) return { token: settings.token };
  if (settings.username) return { username: settings.username, password: settings.password ?? '' };
  return undefined;
}

/**
 * The client's credentials as configured: a token secret read on first use (INFLUX_TOKEN_SECRET;
 * an empty token means a server without authentication), else the plain settings.
 */
export function influxCredentials(
  settings: Parameters<typeof influxAuth>[0] & { tokenSecret?: string | undefined },
  secrets: () => SecretStore,
): Pick<InfluxClientOptions, 'auth' | 'credentials'> {
  const { tokenSecret } = settings;
  if (tokenSecret) {
    return {
      credentials: async () => {
        const token = await secretField(secrets(), tokenSecret, 'token');
        return token ? { token } : undefined;
      },
    };
  }
  const auth = influxAuth(settings);
  return auth ? { auth } : {};
}

export interface InfluxClientOptions {
  url: string;
  /** Default `db` for writes and queries. */
  database: string;
  auth?: InfluxAuth;
  /** Credentials read on first use instead of `auth` (a secret, once per process). */
  credentials?: () => Promise<InfluxAuth | undefined>;
  /** Per request; a hung server must not hang a Lambda. */
  timeoutMs?: number;
  /** Lines per write request. */
  batchSize?: number;
  /** Bytes per write request, so long string fields cannot exceed the server's body limit. */
  maxBatchBytes?: number;
  /** Write requests of one `write` call in flight at once. Default 2. */
  writeConcurrency?: number;
  gzip?: boolean;
}

export type InfluxValue = number | string | boolean | null;

export interface InfluxSeries {
  name: string;
  tags: Record<string, string>;
  columns: string[];
  values: InfluxValue[][];
}

/** One statement's answer. */
export interface StatementResult {
  series: InfluxSeries[];
}

export class InfluxError extends Error {
  override readonly name: string = 'InfluxError';
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The server is down, overloaded, timed out or answered 5xx: the caller should retry. */
export class InfluxUnavailableError extends InfluxError {
  override readonly name = 'InfluxUnavailableError';
}

/** A 4xx answer that is not one of the typed refusals below (bad request, auth, no such db). */
export class InfluxRequestError extends InfluxError {
  override readonly name = 'InfluxRequestError';
}

/** A statement the server refused; `statement` is its index in the request. */
export class InfluxQueryError extends InfluxError {
  override readonly name = 'InfluxQueryError';
  constructor(
    message: string,
    readonly statement?: number,
    status?: number,
  ) {
    super(message, status);
  }
}

export interface RefusedBatch {
  /** Index of the batch's first line in the lines given to `write`. */
  offset: number;
  lines: number;
  dropped: number;
}

/**
 * Points older than the policy's duration were dropped; the other points of each batch were
 * stored. `batches` says where, so the caller can tell which points were refused.
 */
export class BeyondRetentionError extends InfluxError {
  override readonly name = 'BeyondRetentionError';
  constructor(
    readonly dropped: number,
    readonly batches: RefusedBatch[],
    message = `partial write: points beyond retention policy dropped=${dropped}`,
  ) {
    super(message, 400);
  }
}

/** A field was written with another type than the one the shard already has. */
export class FieldTypeConflictError extends InfluxError {
  override readonly name = 'FieldTypeConflictError';
  constructor(
    message: string,
    readonly dropped: number | undefined,
    readonly measurement: string | undefined,
    readonly field: string | undefined,
    status?: number,
  ) {
    super(message, status);
  }
}

const RETENTION_REFUSAL = /points beyond retention policy dropped=(\d+)/;
const TYPE_CONFLICT = /field type conflict/;

function refusalOf(message: string, status: number): InfluxError {
  const dropped = /dropped=(\d+)/.exec(message);
  if (TYPE_CONFLICT.test(message)) {
    const detail = /input field "([^"]*)" on measurement "([^"]*)"/.exec(message);
    return new FieldTypeConflictError(
      message,
      dropped ? Number(dropped[1]) : undefined,
      detail?.[2],
      detail?.[1],
      status,
    );
  }
  return new InfluxRequestError(message, status);
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  return messageOf(text, response.headers.get('x-influxdb-error'), response.status);
}

function messageOf(text: string, errorHeader: string | null | undefined, status: number): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    if (typeof body.message === 'string') return body.message;
  } catch {
    // Not JSON (a proxy's page, say): the text itself is the best message there is.
  }
  return text.trim() || errorHeader || `HTTP ${status}`;
}

/** Answers worth retrying later: the server is overloaded or failing, not refusing. */
const isUnavailableStatus = (status: number) => status >= 500 || status === 429;

const answeredError = (status: number, message: string) =>
  new InfluxUnavailableError(`InfluxDB answered ${status}: ${message}`, status);

const timeoutError = (timeoutMs: number, cause?: unknown) =>
  new InfluxUnavailableError(`InfluxDB did not answer within ${timeoutMs} ms`, undefined, {
    cause,
  });

/** A write's answer: the status, and the server's message when it refused. */
interface WriteAnswer {
  status: number;
  message: string;
}

function isSeries(value: unknown): value is {
  name?: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: InfluxValue[][];
  partial?: boolean;
} {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { columns?: unknown }).columns)
  );
}

/** One request's body: `lines` lines from `offset` on, in `body`, a part of `scratch`. */
interface EncodedBatch {
  offset: number;
  lines: number;
  body: Buffer;
  scratch: Buffer;
}

const NEWLINE = 0x0a;

/**
 * Builds write request bodies line by line, straight into pooled buffers, starting a new
 * batch at `batchSize` lines, or when the next line might not fit in the buffer or within
 * `maxBatchBytes` (a line larger than that goes alone). Joining line strings and encoding
 * the result cost three times as much, and strings kept until their batch was sent were
 * copied by every young-generation collection meanwhile.
 */
export class LineEncoder implements LineSink {
  readonly #bodies: BufferPool;
  readonly #batchSize: number;
  readonly #maxBatchBytes: number;
  readonly #batches: EncodedBatch[] = [];
  #buffer: Buffer | undefined;
  #length = 0;
  #lines = 0;
  #offset = 0;

  constructor(bodies: BufferPool, batchSize: number, maxBatchBytes: number) {
    this.#bodies = bodies;
    this.#batchSize = batchSize;
    this.#maxBatchBytes = maxBatchBytes;
  }

  get buffer(): Buffer {
    return this.#buffer as Buffer;
  }

  get at(): number {
    return this.#length;
  }

  reserve(maxBytes: number): void {
    const room = maxBytes + 1;
    if (
      this.#lines > 0 &&
      (this.#lines >= this.#batchSize ||
        this.#length + room > (this.#buffer as Buffer).length ||
        this.#length + room > this.#maxBatchBytes + 1)
    ) {
      this.#cut();
    }
    if (!this.#buffer || this.#length + room > this.#buffer.length) {
      if (this.#buffer) this.#bodies.give(this.#buffer);
      this.#buffer = this.#bodies.take(room);
    }
  }

  commit(end: number): void {
    (this.#buffer as Buffer)[end] = NEWLINE;
    this.#length = end + 1;
    this.#lines += 1;
  }

  line(text: string): void {
    this.reserve(text.length * 3);
    this.commit(this.#length + this.buffer.write(text, this.#length));
  }

  #cut(): void {
    const scratch = this.#buffer as Buffer;
    this.#batches.push({
      offset: this.#offset,
      lines: this.#lines,
      body: scratch.subarray(0, this.#length - 1),
      scratch,
    });
    this.#offset += this.#lines;
    this.#lines = 0;
    this.#length = 0;
    this.#buffer = undefined;
  }

  /** The lines written, to `write` once. */
  finish(): EncodedLines {
    if (this.#lines > 0) this.#cut();
    else if (this.#buffer) this.#bodies.give(this.#buffer);
    this.#buffer = undefined;
    return new EncodedLines(this.#batches, this.#offset);
  }
}

/**
 * Lines already made into request bodies (`InfluxClient.encode`), for `write`, once: the
 * buffers go back to the client's pool as their requests are answered.
 */
export class EncodedLines {
  #batches: EncodedBatch[] | undefined;

  constructor(
    batches: EncodedBatch[],
    /** How many lines. */
    readonly count: number,
  ) {
    this.#batches = batches;
  }

  /** The bodies, to the one write that sends them. */
  take(): EncodedBatch[] {
    const batches = this.#batches;
    if (!batches) throw new Error('these encoded lines were already written');
    this.#batches = undefined;
    return batches;
  }
}

export class InfluxClient {
  readonly database: string;
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #maxBatchBytes: number;
  readonly #writeConcurrency: number;
  readonly #gzip: boolean;
  /**
   * Writes go through node:http (`post`) rather than fetch: fetch's web streams copy a
   * 5,000-line body twice more. Connections are kept for the next invocation.
   */
  readonly #writeAgent: Agent;
  // As many as the batches of a few invocations' writes at once.
  readonly #bodies = new BufferPool(32);

  constructor(options: InfluxClientOptions) {
    this.#url = options.url.replace(/\/+$/, '');
    this.database = options.database;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#batchSize = Math.min(options.batchSize ?? 5000, 5000);
    this.#maxBatchBytes = options.maxBatchBytes ?? 8 * 1024 * 1024;
    this.#writeConcurrency = Math.max(1, options.writeConcurrency ?? 2);
    this.#gzip = options.gzip ?? false;
    this.#writeAgent = keepAliveAgent(this.#url);
    this.#headers = {};
    this.#setAuth(options.auth);
    this.#credentials = options.credentials;
  }

  #setAuth(auth: InfluxAuth | undefined): void {
    // Headers, not u/p query parameters: URLs end up in proxies' and servers' logs.
    if (auth && 'token' in auth) this.#headers.authorization = `Token ${auth.token}`;
    else if (auth) {
      const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
      this.#headers.authorization = `Basic ${basic}`;
    }
  }

  readonly #credentials: (() => Promise<InfluxAuth | undefined>) | undefined;
  #credentialsLoaded: Promise<void> | undefined;

  /** Loads the credentials before the first request; a failed load is tried again next time. */
  async #authenticated(): Promise<void> {
    if (!this.#credentials) return;
    this.#credentialsLoaded ??= this.#credentials().then(
      (auth) => this.#setAuth(auth),
      (error: unknown) => {
        this.#credentialsLoaded = undefined;
        throw new InfluxUnavailableError(
          `InfluxDB credentials could not be read: ${error instanceof Error ? error.message : String(error)}`,
          undefined,
          { cause: error },
        );
      },
    );
    await this.#credentialsLoaded;
  }

  async #request(
    path: string,
    init: {
      method: string;
      body?: string | Uint8Array<ArrayBuffer>;
      headers?: Record<string, string>;
    },
    timeoutMs = this.#timeoutMs,
  ): Promise<Response> {
    await this.#authenticated();
    let response: Response;
    try {
      response = await fetch(`${this.#url}${path}`, {
        method: init.method,
        headers: { ...this.#headers, ...init.headers },
        body: init.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      throw timedOut ? timeoutError(timeoutMs, error) : this.#unreachable(error);
    }
    if (isUnavailableStatus(response.status)) {
      throw answeredError(response.status, await errorMessage(response));
    }
    return response;
  }

  #unreachable(error: unknown): InfluxUnavailableError {
    const detail = error instanceof Error ? error.message : String(error);
    return new InfluxUnavailableError(
      `InfluxDB is unreachable at ${this.#url}: ${detail}`,
      undefined,
      {
        cause: error,
      },
    );
  }

  /** POSTs a write body; what `#request` does for fetch, for node:http. */
  async #post(
    path: string,
    body: string | Buffer,
    headers: Record<string, string>,
  ): Promise<WriteAnswer> {
    await this.#authenticated();
    let answer: PostAnswer;
    try {
      answer = await post(new URL(`${this.#url}${path}`), body, {
        agent: this.#writeAgent,
        headers: { ...this.#headers, ...headers },
        timeoutMs: this.#timeoutMs,
      });
    } catch (error) {
      throw error instanceof PostTimeoutError
        ? timeoutError(this.#timeoutMs, error)
        : this.#unreachable(error);
    }
    const { status } = answer;
    const message =
      status === 204 || status === 200
        ? ''
        : messageOf(
            answer.body.toString('utf8'),
            headerOf(answer.headers, 'x-influxdb-error'),
            status,
          );
    if (isUnavailableStatus(status)) throw answeredError(status, message);
    return { status, message };
  }

  /** True when the server answers `/ping`; never throws. */
  async ping(timeoutMs = Math.min(this.#timeoutMs, 2000)): Promise<boolean> {
    try {
      const response = await this.#request('/ping', { method: 'GET' }, timeoutMs);
      await response.body?.cancel();
      return response.status === 204 || response.status === 200;
    } catch {
      return false;
    }
  }

  /** Builds request bodies line by line (see `LineEncoder`), for `write`. */
  encoder(): LineEncoder {
    return new LineEncoder(this.#bodies, this.#batchSize, this.#maxBatchBytes);
  }

  /**
   * Makes lines into request bodies now, so that the caller's strings can die young; the
   * bodies live outside the JavaScript heap until `write` sends them.
   */
  encode(lines: readonly string[]): EncodedLines {
    const encoder = this.encoder();
    for (const line of lines) encoder.line(line);
    return encoder.finish();
  }

  /**
   * Writes line protocol (millisecond timestamps unless `precision` says ns) in batches of at most `batchSize` lines,
   * `writeConcurrency` of them at a time: the server parses one batch while the next is on
   * its way. Batches refused in part for retention go on; the refusals are reported together
   * as one `BeyondRetentionError` at the end. Any other failure stops sending batches and is
   * thrown (the batches already written are stored; writes are idempotent, so retrying all
   * of them is safe).
   */
  async write(
    lines: readonly string[] | EncodedLines,
    options: { retentionPolicy?: string; database?: string; precision?: Precision } = {},
  ): Promise<void> {
    const batches = (lines instanceof EncodedLines ? lines : this.encode(lines)).take();
    const params = new URLSearchParams({
      db: options.database ?? this.database,
      precision: options.precision ?? 'ms',
    });
    if (options.retentionPolicy) params.set('rp', options.retentionPolicy);
    const refused: RefusedBatch[] = [];
    let next = 0;
    let failed: { error: unknown } | undefined;
    const writer = async () => {
      while (next < batches.length && !failed) {
        const batch = batches[next++] as (typeof batches)[number];
        try {
          const refusal = await this.#writeBatch(batch, params);
          if (refusal) refused.push(refusal);
        } catch (error) {
          failed ??= { error };
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.#writeConcurrency, batches.length) }, writer),
    );
    if (failed) throw failed.error;
    if (refused.length > 0) {
      refused.sort((a, b) => a.offset - b.offset);
      const dropped = refused.reduce((sum, batch) => sum + batch.dropped, 0);
      throw new BeyondRetentionError(dropped, refused);
    }
  }

  /** One write request; a partial refusal for retention is returned, any other thrown. */
  async #writeBatch(
    batch: EncodedBatch,
    params: URLSearchParams,
  ): Promise<RefusedBatch | undefined> {
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    let body = batch.body;
    if (this.#gzip) {
      body = await gzip(body);
      headers['content-encoding'] = 'gzip';
    }
    // Given back only once answered: a request that failed may still hold it in a write.
    const { status, message } = await this.#post(`/write?${params}`, body, headers);
    this.#bodies.give(batch.scratch);
    if (status === 204 || status === 200) return undefined;
    const beyond = RETENTION_REFUSAL.exec(message);
    if (beyond && !TYPE_CONFLICT.test(message)) {
      return { offset: batch.offset, lines: batch.lines, dropped: Number(beyond[1]) };
    }
    throw refusalOf(message, status);
  }

  /**
   * Runs InfluxQL (one or more statements) with millisecond epoch times. Throws
   * `InfluxQueryError` with the server's message if any statement failed, or if the server
   * truncated a result (its `max-row-limit`): a silently short answer would be wrong.
   */
  async query(
    statement: InfluxQL,
    options: { database?: string; timeoutMs?: number } = {},
  ): Promise<StatementResult[]> {
    const form = new URLSearchParams({ q: statement, epoch: 'ms' });
    const database = options.database ?? this.database;
    if (database) form.set('db', database);
    const response = await this.#request(
      '/query',
      {
        method: 'POST',
        body: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      options.timeoutMs,
    );
    if (response.status !== 200) {
      const message = await errorMessage(response);
      if (response.status === 400) throw new InfluxQueryError(message, undefined, response.status);
      throw new InfluxRequestError(message, response.status);
    }
    let body: { results?: unknown; error?: unknown };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      throw new InfluxUnavailableError('InfluxDB sent an unreadable query answer', 200, {
        cause: error,
      });
    }
    if (typeof body.error === 'string') throw new InfluxQueryError(body.error, undefined, 200);
    const results = Array.isArray(body.results) ? body.results : [];
    return results.map((raw: unknown, index) => {
      const result = (raw ?? {}) as { error?: unknown; series?: unknown; partial?: unknown };
      if (typeof result.error === 'string') throw new InfluxQueryError(result.error, index, 200);
      const series = Array.isArray(result.series) ? result.series.filter(isSeries) : [];
      if (result.partial === true || series.some((s) => s.partial === true)) {
        throw new InfluxQueryError(
          'InfluxDB truncated the result (max-row-limit); narrow the query',
          index,
          200,
        );
      }
      return {
        series: series.map((s) => ({
          name: s.name ?? '',
          tags: s.tags ?? {},
          columns: s.columns,
          values: s.values ?? [],
        })),
      };
    });
  }
}

/** A series' rows as objects keyed by column. */
export function rowsOf(series: InfluxSeries): Array<Record<string, InfluxValue>> {
  return series.values.map((row) =>
    Object.fromEntries(series.columns.map((column, index) => [column, row[index] ?? null])),
  );
}
