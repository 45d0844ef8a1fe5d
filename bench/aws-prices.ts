/**
 * AWS list prices the cost model (`npm run bench:cost`) applies: US East (N. Virginia),
 * on-demand, no free tier, as published on the pages below and read on 2026-12-06. Where a
 * page renders its rate table only in a browser, the rate is the one its worked pricing
 * example states (AWS IoT Core: $0.08 per million connection minutes, $1.00 per million
 * messages). Change them here, in one place, when AWS does.
 */
export const AWS_PRICES = {
  region: 'us-east-1',
  readOn: '2026-12-06',
  iotCore: {
    source: 'https://aws.amazon.com/iot-core/pricing/ (metering: .../pricing/additional-details/)',
    connectionMinutePerMillion: 0.08,
    /** Per million messages, by monthly volume; each message metered in 5 KB increments. */
    messagingPerMillion: [
      { upTo: 1_000_000_000, usd: 1.0 },
      { upTo: 5_000_000_000, usd: 0.8 },
      { upTo: Number.POSITIVE_INFINITY, usd: 0.7 },
    ],
    ruleTriggeredPerMillion: 0.15,
    actionAppliedPerMillion: 0.15,
    meteringBytes: 5 * 1024,
  },
  kinesisDataStreams: {
    source: 'https://aws.amazon.com/kinesis/data-streams/pricing/ (provisioned mode)',
    shardHour: 0.015,
    /** A PUT payload unit is a record's data in 25 KB chunks. */
    putPayloadUnitPerMillion: 0.014,
    /** An enhanced fan-out consumer, per shard it reads, and the data it is pushed. */
    enhancedFanOutConsumerShardHour: 0.015,
    enhancedFanOutRetrievalPerGb: 0.013,
  },
  lambda: {
    source: 'https://aws.amazon.com/lambda/pricing/ (Arm, first 7.5 billion GB-seconds)',
    requestPerMillion: 0.2,
    gbSecondArm: 0.0000133334,
  },
  apiGatewayWebSocket: {
    source: 'https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs, first billion)',
    /** Messages sent or received, metered in 32 KB increments. */
    messagePerMillion: 1.0,
    connectionMinutePerMillion: 0.25,
    meteringBytes: 32 * 1024,
  },
} as const;

/** The price of `count` units at tiered rates per million. */
export function tieredCost(
  count: number,
  tiers: ReadonlyArray<{ upTo: number; usd: number }>,
): number {
  let cost = 0;
  let from = 0;
  for (const tier of tiers) {
    const inTier = Math.max(0, Math.min(count, tier.upTo) - from);
    cost += (inTier / 1e6) * tier.usd;
    from = tier.upTo;
    if (count <= from) break;
  }
  return cost;
}
