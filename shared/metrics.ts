import type { Logger } from './logger.ts';

/**
 * CloudWatch embedded metric format (EMF): one structured log line that CloudWatch Logs
 * turns into metrics, with no API call and no extra permission. Locally the same line is
 * just a log. Every metric carries the Service and Stage dimensions, so the alarms of one
 * stage (infra/resources/alarms.yml) never count another stage's traffic.
 */
export const METRICS_NAMESPACE = 'EasySmart';

export type MetricUnit = 'Count' | 'Milliseconds' | 'Seconds' | 'Bytes' | 'Percent' | 'None';

export interface Metric {
  value: number;
  unit?: MetricUnit;
}

export interface MetricsContext {
  logger: Logger;
  stage: string;
  service?: string;
}

/**
 * Logs `metrics` as one EMF record. `dimensions` narrow them further (e.g. `{ Outcome:
 * 'confirmed' }`); keep their values low-cardinality: every distinct combination is a
 * separate, billed metric. `fields` are logged alongside and not turned into metrics.
 */
export function emitMetrics(
  context: MetricsContext,
  metrics: Record<string, Metric | number>,
  options: { dimensions?: Record<string, string>; fields?: Record<string, unknown> } = {},
): void {
  const dimensions = {
    Service: context.service ?? 'easysmart',
    Stage: context.stage,
    ...options.dimensions,
  };
  const values: Record<string, number> = {};
  const definitions: Array<{ Name: string; Unit: MetricUnit }> = [];
  for (const [name, metric] of Object.entries(metrics)) {
    const { value, unit = 'Count' } = typeof metric === 'number' ? { value: metric } : metric;
    // EMF drops the whole record for a non-finite value; a broken metric must not hide the rest.
    if (!Number.isFinite(value)) continue;
    values[name] = value;
    definitions.push({ Name: name, Unit: unit });
  }
  if (definitions.length === 0) return;
  context.logger.info('metrics', {
    ...options.fields,
    ...dimensions,
    ...values,
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [Object.keys(dimensions)],
          Metrics: definitions,
        },
      ],
    },
  });
}
