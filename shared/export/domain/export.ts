import { randomUUID } from 'node:crypto';
import type { AuditTrail } from '../../audit/domain/audit.ts';
import type { DeviceStore } from '../../devices/domain/device-store.ts';
import { InvalidInput, NotFound } from '../../domain-errors.ts';
import type { EntityRef, PriorTier, SeriesSource } from '../../timeseries/domain/reading-store.ts';

export type ExportFormat = 'csv' | 'jsonl';

export interface ExportRequest {
  from: Date;
  to: Date;
  entityIds?: string[];
  format: ExportFormat;
  source: SeriesSource;
}

/** One exported point. `time` is ISO 8601 UTC. */
export interface ExportRow {
  time: string;
  deviceId: string;
  entityId: string;
  value: number | boolean | string;
}

/** What the reader needs of a device. */
export interface ExportDevice {
  deviceId: string;
  entities: EntityRef[];
  retentionPolicy: string;
  priorTier?: PriorTier;
}

/** Port: a device's points in time order, a page at a time (memory stays flat). */
export interface ExportReader {
  pages(tenantId: number, device: ExportDevice, request: ExportRequest): AsyncIterable<ExportRow[]>;
}

/** Port: where export files go (a folder locally, S3 on AWS), and their expiring links. */
export interface ExportFileStore {
  write(key: string, body: AsyncIterable<string>, contentType: string): Promise<{ bytes: number }>;
  link(key: string, ttlSeconds: number): Promise<{ url: string; expiresAt: Date }>;
}

export interface ExportJob {
  id: number;
  tenant_id: number;
  status: 'pending' | 'running' | 'done' | 'failed';
  request: {
    from: string;
    to: string;
    format: ExportFormat;
    source: SeriesSource;
    device_ids: number[] | null;
  };
  rows: number | null;
  bytes: number | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  object_key: string | null;
}

/** Port: tenant-wide export jobs. */
export interface ExportJobStore {
  /** Stores a pending job; returns its id. */
  create(tenantId: number, requestedBy: number, request: ExportJob['request']): Promise<number>;
  get(tenantId: number, id: number): Promise<ExportJob | null>;
  /** Marks a pending job running; null when it is not pending (another run took it). */
  start(tenantId: number, id: number): Promise<ExportJob | null>;
  finish(
    tenantId: number,
    id: number,
    outcome:
      | { status: 'done'; objectKey: string; rows: number; bytes: number }
      | { status: 'failed'; error: string },
  ): Promise<void>;
}

/** Port: runs a job outside the request (an asynchronous invocation). */
export interface ExportJobDispatcher {
  dispatch(tenantId: number, jobId: number): Promise<void>;
}

const CSV_HEADER: Record<SeriesSource, string> = {
  raw: 'time,device_id,entity_id,value\n',
  '5m': 'time,device_id,entity_id,mean\n',
  '1h': 'time,device_id,entity_id,mean\n',
};

/** RFC 4180 quoting, and a leading quote mark for text a spreadsheet would run as a formula. */
export function csvField(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function formatRows(rows: ExportRow[], format: ExportFormat, source: SeriesSource): string {
  let text = '';
  const field = source === 'raw' ? 'value' : 'mean';
  for (const row of rows) {
    text +=
      format === 'csv'
        ? `${row.time},${csvField(row.deviceId)},${csvField(row.entityId)},${csvField(row.value)}\n`
        : `${JSON.stringify({ time: row.time, device_id: row.deviceId, entity_id: row.entityId, [field]: row.value })}\n`;
  }
  return text;
}

const MAX_RANGE_MS = 10 * 366 * 86_400_000;

/**
 * Exports: one device's points streamed into a file (constant memory whatever the range),
 * handed back as an expiring link; a tenant's many devices as a job run apart from the
 * request. Every export is on the audit trail.
 */
export class ExportService {
  constructor(
    private readonly deps: {
      devices: Pick<DeviceStore, 'get' | 'list'>;
      reader: ExportReader;
      files: ExportFileStore;
      jobs: ExportJobStore;
      dispatcher: ExportJobDispatcher;
      audit: AuditTrail;
      linkTtlSeconds: number;
    },
  ) {}

  #check(request: ExportRequest) {
    if (request.from >= request.to)
      throw new InvalidInput('invalid_range', '`from` must be before `to`');
    if (request.to.getTime() - request.from.getTime() > MAX_RANGE_MS)
      throw new InvalidInput('invalid_range', 'An export spans at most ten years');
  }

  async #device(tenantId: number, pk: number, entityIds?: string[]): Promise<ExportDevice> {
    const found = await this.deps.devices.get(tenantId, pk);
    if (!found) throw new NotFound('device_not_found', 'No such device');
    const known = new Set(found.entities.map((entity) => entity.entity_id));
    const unknown = entityIds?.filter((id) => !known.has(id)) ?? [];
    if (unknown.length > 0)
      throw new NotFound('entity_not_found', `The device has no entity ${unknown.join(', ')}`);
    return {
      deviceId: found.device.device_id,
      entities: found.entities
        .filter((entity) => !entityIds || entityIds.includes(entity.entity_id))
        .map((entity) => ({ entityId: entity.entity_id, entityType: entity.entity_type })),
      retentionPolicy: found.retentionPolicy,
      priorTier: found.priorTier,
    };
  }

  async *#lines(
    tenantId: number,
    devices: ExportDevice[],
    request: ExportRequest,
    count: { rows: number },
  ) {
    if (request.format === 'csv') yield CSV_HEADER[request.source];
    for (const device of devices) {
      for await (const page of this.deps.reader.pages(tenantId, device, request)) {
        count.rows += page.length;
        yield formatRows(page, request.format, request.source);
      }
    }
  }

  async #writeExport(tenantId: number, devices: ExportDevice[], request: ExportRequest) {
    const key = `${tenantId}/${randomUUID()}.${request.format}`;
    const count = { rows: 0 };
    const { bytes } = await this.deps.files.write(
      key,
      this.#lines(tenantId, devices, request, count),
      request.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
    );
    return { key, rows: count.rows, bytes };
  }

  async exportDevice(
    actor: { tenantId: number; userId: number },
    pk: number,
    request: ExportRequest,
  ) {
    this.#check(request);
    const device = await this.#device(actor.tenantId, pk, request.entityIds);
    const written = await this.#writeExport(actor.tenantId, [device], request);
    const link = await this.deps.files.link(written.key, this.deps.linkTtlSeconds);
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'export.device',
      target: `device:${pk}`,
      details: {
        from: request.from.toISOString(),
        to: request.to.toISOString(),
        entity_ids: request.entityIds ?? null,
        format: request.format,
        source: request.source,
        rows: written.rows,
      },
    });
    return {
      export: {
        url: link.url,
        expires_at: link.expiresAt.toISOString(),
        format: request.format,
        source: request.source,
        rows: written.rows,
        bytes: written.bytes,
      },
    };
  }

  async startTenantExport(
    actor: { tenantId: number; userId: number },
    request: Omit<ExportRequest, 'entityIds'> & { deviceIds?: number[] },
  ) {
    this.#check(request);
    const stored: ExportJob['request'] = {
      from: request.from.toISOString(),
      to: request.to.toISOString(),
      format: request.format,
      source: request.source,
      device_ids: request.deviceIds ?? null,
    };
    const id = await this.deps.jobs.create(actor.tenantId, actor.userId, stored);
    await this.deps.audit.record({
      tenantId: actor.tenantId,
      userId: actor.userId,
      action: 'export.tenant',
      target: `export:${id}`,
      details: stored,
    });
    await this.deps.dispatcher.dispatch(actor.tenantId, id);
    return { job: await this.jobView(actor.tenantId, id) };
  }

  async getJob(actor: { tenantId: number }, id: number) {
    return { job: await this.jobView(actor.tenantId, id) };
  }

  async jobView(tenantId: number, id: number) {
    const job = await this.deps.jobs.get(tenantId, id);
    if (!job) throw new NotFound('export_not_found', 'No such export');
    const { object_key: key, tenant_id: _tenant, ...view } = job;
    if (job.status !== 'done' || !key) return { ...view, url: null, expires_at: null };
    const link = await this.deps.files.link(key, this.deps.linkTtlSeconds);
    return { ...view, url: link.url, expires_at: link.expiresAt.toISOString() };
  }

  /** Runs a tenant-wide job: every device (or those asked for), one file. */
  async runJob(tenantId: number, id: number): Promise<void> {
    const job = await this.deps.jobs.start(tenantId, id);
    if (!job) return;
    try {
      const request: ExportRequest = {
        from: new Date(job.request.from),
        to: new Date(job.request.to),
        format: job.request.format,
        source: job.request.source,
      };
      const pks =
        job.request.device_ids ??
        (await this.deps.devices.list(tenantId)).map((device) => device.id);
      const devices: ExportDevice[] = [];
      for (const pk of pks) {
        // A device removed since the request is left out, not a failure.
        const device = await this.#device(tenantId, pk).catch((error: unknown) => {
          if (error instanceof NotFound) return null;
          throw error;
        });
        if (device) devices.push(device);
      }
      const written = await this.#writeExport(tenantId, devices, request);
      await this.deps.jobs.finish(tenantId, id, {
        status: 'done',
        objectKey: written.key,
        rows: written.rows,
        bytes: written.bytes,
      });
    } catch (error) {
      await this.deps.jobs.finish(tenantId, id, {
        status: 'failed',
        error: String((error as Error)?.message ?? error).slice(0, 500),
      });
      throw error;
    }
  }
}
