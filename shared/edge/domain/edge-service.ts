import { z } from 'zod';
import type { Caller } from '../../accounts/domain/caller.ts';
import type { AuditTrail } from '../../audit/domain/audit.ts';
import { DependencyFailed, NotPermitted, Unprocessable } from '../../domain-errors.ts';
import { exportEdgeModel } from './export.ts';
import { crc32Hex, EDGE_HEADER_BYTES, EDGE_LIMITS, EdgeFormatError } from './model-format.ts';
import type {
  DeviceReport,
  DeviceTopicPublisher,
  EdgeAnomaly,
  EdgeDeployment,
  EdgeDeploymentStore,
  RunningModel,
} from './ports.ts';

/**
 * Edge deployment: exports an entity's advanced model with its current statistics, sends it
 * to the device in chunks on devices/<id>/model/set, and follows the device's answer on
 * devices/<id>/model/state.
 *
 * Chunks over MQTT rather than a signed URL: the device already holds an authenticated
 * MQTT session and has no HTTP client or second TLS session to spare (an ESP32 has RAM
 * for about one), the file is a few kilobytes (at most 16 KB), and the broker's access
 * policy already restricts who may publish to the device's topics.
 */

/** Raw bytes per chunk: about 1.4 KB of base64 in a JSON message the ESP32's client holds. */
export const CHUNK_BYTES = 1024;

/** `none` (and nulls): no edge model was ever sent to the device. */
export interface EdgeModelView {
  entity_id: string | null;
  version: string | null;
  checksum: string | null;
  status: EdgeDeployment['status'] | 'none';
  status_reason: string | null;
  size_bytes: number | null;
  weight_encoding: EdgeDeployment['weightEncoding'] | null;
  created_at: string | null;
  updated_at: string | null;
  running: { version: string; checksum: string; reported_at: string } | null;
  anomalies: Array<{
    entity_id: string;
    time: string;
    value: number;
    score: number;
    reason: string | null;
    model_version: string;
  }>;
}

const reportSchema = z.object({
  version: z.string().max(EDGE_LIMITS.maxVersionBytes),
  checksum: z.string().max(8),
  status: z.enum(['confirmed', 'failed']),
  reason: z.string().max(64).optional(),
  anomalies: z
    .array(
      z.object({
        entity_id: z.string().min(1).max(100),
        timestamp: z.number().finite().min(946_684_800).max(4_102_444_800),
        value: z.number().finite(),
        score: z.number().finite().min(0).max(1),
        reason: z.string().max(32).optional(),
      }),
    )
    .max(64)
    .optional(),
});

export class EdgeModelService {
  constructor(
    private readonly store: EdgeDeploymentStore,
    private readonly publisher: DeviceTopicPublisher,
    /** Where deployments and rollbacks people ask for are recorded. */
    private readonly audit?: AuditTrail,
  ) {}

  async #requirePlan(tenantId: number): Promise<void> {
    if (!(await this.store.planAllows(tenantId))) {
      throw new NotPermitted(
        'plan_required',
        'Edge deployment needs the Industrial plan; upgrade to use it',
      );
    }
  }

  /** Exports and sends the entity's model (`version`: an earlier one, to roll back). */
  async deploy(
    caller: Caller,
    deviceId: number,
    entityId: string,
    version: string | null = null,
  ): Promise<EdgeModelView> {
    await this.#requirePlan(caller.tenantId);
    const snapshot = await this.store.snapshot(caller.tenantId, deviceId, entityId, version);
    let exported: ReturnType<typeof exportEdgeModel>;
    try {
      exported = exportEdgeModel({
        entityId,
        model: snapshot.model,
        detectorState: snapshot.detectorState,
        lastTimeMs: snapshot.lastTimeMs,
      });
    } catch (error) {
      if (error instanceof EdgeFormatError && error.reason === 'too_large') {
        throw new Unprocessable('model_too_large', error.message);
      }
      if (error instanceof EdgeFormatError && error.reason === 'unsupported_model') {
        throw new Unprocessable(
          'model_not_for_edge',
          `This model runs on the platform only: ${error.message}`,
        );
      }
      throw error;
    }
    const { bytes } = exported;
    const checksum = crc32Hex(bytes.subarray(EDGE_HEADER_BYTES));
    const deployment = await this.store.record(caller.tenantId, {
      deviceId,
      entityId,
      version: snapshot.model.version,
      checksum,
      sizeBytes: bytes.length,
      weightEncoding: exported.encoding,
      requestedBy: `user_${caller.userId}`,
    });
    await this.audit?.record({
      tenantId: caller.tenantId,
      userId: caller.userId,
      action: version === null ? 'edge_model.deploy' : 'edge_model.rollback',
      target: `device:${deviceId}`,
      details: {
        entity_id: entityId,
        version: snapshot.model.version,
        checksum,
        size_bytes: bytes.length,
      },
    });
    const topic = `devices/${snapshot.physicalId}/model/set`;
    try {
      // In order, each acknowledged by the broker before the next: the device assembles
      // them in order and refuses a gap.
      for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
        await this.publisher.publish(topic, {
          version: snapshot.model.version,
          checksum,
          size: bytes.length,
          offset,
          data: Buffer.from(bytes.subarray(offset, offset + CHUNK_BYTES)).toString('base64'),
        });
      }
    } catch (error) {
      await this.store.markFailed(caller.tenantId, deployment.id, 'broker_unavailable');
      throw new DependencyFailed(
        'broker_unavailable',
        'The model could not be delivered to the broker',
        { cause: error },
      );
    }
    return view(deployment, null, []);
  }

  async current(caller: Caller, deviceId: number): Promise<EdgeModelView> {
    await this.#requirePlan(caller.tenantId);
    const { deployment, running, anomalies } = await this.store.current(caller.tenantId, deviceId);
    return view(deployment, running, anomalies);
  }

  /**
   * A device's message on devices/<id>/model/state. Returns why it was refused (the
   * ingestion path counts it as a rejected message), or null once applied.
   */
  async report(
    device: { devicePk: number; tenantId: number },
    payload: unknown,
  ): Promise<string | null> {
    const parsed = reportSchema.safeParse(payload);
    if (!parsed.success) return `invalid model state: ${parsed.error.issues[0]?.message ?? ''}`;
    const r = parsed.data;
    const report: DeviceReport = {
      version: r.version,
      checksum: r.checksum,
      status: r.status,
      reason: r.reason,
      anomalies: (r.anomalies ?? []).map((a) => ({
        entityId: a.entity_id,
        timeMs: Math.round(a.timestamp * 1000),
        value: a.value,
        score: a.score,
        reason: a.reason || null,
      })),
    };
    await this.store.applyReport(device.tenantId, device.devicePk, report);
    return null;
  }
}

function view(
  d: EdgeDeployment | null,
  running: RunningModel | null,
  anomalies: EdgeAnomaly[],
): EdgeModelView {
  return {
    entity_id: d?.entityId ?? null,
    version: d?.version ?? null,
    checksum: d?.checksum ?? null,
    status: d?.status ?? 'none',
    status_reason: d?.statusReason ?? null,
    size_bytes: d?.sizeBytes ?? null,
    weight_encoding: d?.weightEncoding ?? null,
    created_at: d?.createdAt ?? null,
    updated_at: d?.updatedAt ?? null,
    running: running
      ? { version: running.version, checksum: running.checksum, reported_at: running.reportedAt }
      : null,
    anomalies: anomalies.map((a) => ({
      entity_id: a.entityId,
      time: new Date(a.timeMs).toISOString(),
      value: a.value,
      score: a.score,
      reason: a.reason,
      model_version: a.modelVersion,
    })),
  };
}
