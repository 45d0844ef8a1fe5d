import { alarmEvaluator, deliveryService } from '../../shared/alarms/composition.ts';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { presenceSweep } from '../../shared/devices/presence-composition.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const evaluator = alarmEvaluator();
const deliveries = deliveryService();
const presence = presenceSweep();
const metrics = { logger: logger().child({ function: 'alarm-notifier' }), stage: config().stage };

/**
 * Two triggers: an asynchronous invocation with `deliveryIds` when alarms change (sends
 * those now), and a schedule (every minute) that marks silent devices offline, runs the
 * time-driven rules (offline ones see the devices just marked) and sends every due
 * delivery, retries included.
 */
export async function handler(event: { deliveryIds?: unknown }) {
  const ids = Array.isArray(event?.deliveryIds)
    ? event.deliveryIds.filter((id): id is number => Number.isSafeInteger(id) && id > 0)
    : undefined;
  const silenced = ids ? [] : await presence.run(Date.now());
  const touched = ids ? [] : await evaluator.evaluateSchedule(Date.now());
  const results = await deliveries.run(ids ? { ids } : {});
  const count = (status: string) => results.filter((result) => result.status === status).length;
  emitMetrics(metrics, {
    DevicesMarkedOffline: silenced.length,
    AlarmsChangedOnSchedule: touched.length,
    NotificationsDelivered: count('delivered'),
    NotificationsRetried: count('pending'),
    NotificationsDeadLettered: count('dead'),
  });
  return { offline: silenced.length, alarms: touched.length, deliveries: results.length };
}
