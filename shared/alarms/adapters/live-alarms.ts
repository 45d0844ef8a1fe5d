import type { TouchedAlarm } from '../domain/model.ts';
import type { AlarmLivePublisher } from '../domain/ports.ts';

export interface AlarmLiveEvent {
  type: 'alarm';
  device_id: number;
  alarm: {
    id: number;
    rule_id: number | null;
    entity_id: string | null;
    severity: string;
    status: string;
    count: number;
    value: unknown;
    event: string;
    started_at: string;
    cleared_at: string | null;
  };
}

/** The live context's publisher, as far as alarms use it. */
export interface LivePublisher {
  publish(tenantId: number, events: () => AlarmLiveEvent[]): Promise<void>;
}

/** Alarm changes as live events on the tenant's dashboards that watch the device. */
export class WebSocketAlarmPublisher implements AlarmLivePublisher {
  constructor(private readonly live: LivePublisher) {}

  async publish(tenantId: number, alarms: TouchedAlarm[]): Promise<void> {
    await this.live.publish(tenantId, () =>
      alarms.map((alarm) => ({
        type: 'alarm' as const,
        device_id: alarm.devicePk,
        alarm: {
          id: alarm.id,
          rule_id: alarm.ruleId,
          entity_id: alarm.entityId,
          severity: alarm.severity,
          status: alarm.status,
          count: alarm.count,
          value: alarm.value,
          event: alarm.event,
          started_at: alarm.startedAt,
          cleared_at: alarm.clearedAt,
        },
      })),
    );
  }
}
