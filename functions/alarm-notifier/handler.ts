import { alarmEvaluator, deliveryService } from '../../shared/alarms/composition.ts';
import { logger } from '../../shared/composition.ts';
import { config } from '../../shared/config.ts';
import { emitMetrics } from '../../shared/metrics.ts';

const evaluator = alarmEvaluator();
const deliveries = deliveryService();
const metrics = { logger: logger().child({ function: 'alarm-notifier' }), stage: config().stage };

/**
 * Two triggers: an asynchronous invocation with `deliveryIds` when alarms change (sends
 * those now), and a schedule (every minute) that runs the time-driven rules and sends every
 * due delivery, retries included.
 */
export async function handler(event: { deliveryIds?: unknown }) {
  const ids = Array.isArray(event?.deliveryIds)
    ? event.deliveryIds.filter((id): id is number => Number.isSafeInteger(id) && id > 0)
    : undefined;
  const touched = ids ? [] : await evaluator.evaluateSchedule(Date.now());
  const results = await deliveries.run(ids ? { ids } : {});
  const count = (status: string) => results.filter((result) => result.status === status).length;
  emitMetrics(metrics, {
    AlarmsChangedOnSchedule: touched.length,
    NotificationsDelivered: count('delivered'),
    NotificationsRetried: count('pending'),
    NotificationsDeadLettered: count('dead'),
  });
  return { alarms: touched.length, deliveries: results.length };
}
