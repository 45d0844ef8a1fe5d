import { describe, expect, it } from 'vitest';
import { DnsWebhookAddressPolicy } from '../../shared/alarms/adapters/webhooks.ts';
import {
  evaluateBatch,
  evaluateSchedule,
  type ObservedDevice,
} from '../../shared/alarms/domain/evaluator.ts';
import {
  type AlarmRule,
  type Condition,
  EMPTY_STATE,
  type RuleTarget,
} from '../../shared/alarms/domain/model.ts';
import { signWebhook, verifyWebhook } from '../../shared/alarms/domain/notifications.ts';
import { csvField, formatRows } from '../../shared/export/domain/export.ts';

const NOW = Date.UTC(2026, 11, 7, 3, 0, 0);

function target(condition: Condition, overrides: Partial<AlarmRule> = {}): RuleTarget {
  return {
    rule: {
      id: 7,
      tenantId: 3,
      name: 'rule',
      devicePk: 11,
      deviceType: null,
      entityId: 'temperature',
      severity: 'major',
      condition,
      notify: {
        webhooks: [{ url: 'https://hooks.example/x', secret: 's'.repeat(16) }],
        emails: [],
      },
      quietMinutes: 10,
      enabled: true,
      ...overrides,
    },
    devicePk: 11,
    state: { ...EMPTY_STATE },
    open: false,
  };
}

function device(
  values: Array<[number, number | boolean, string?]>,
  anomalies: ObservedDevice['anomalies'] = [],
) {
  return new Map([
    [
      11,
      {
        devicePk: 11,
        tenantId: 3,
        readings: values.map(([seconds, value, triggeredBy]) => ({
          entityId: typeof value === 'boolean' ? 'pump' : 'temperature',
          entityType: typeof value === 'boolean' ? ('switch' as const) : ('sensor' as const),
          value,
          timeMs: NOW + seconds * 1000,
          ...(triggeredBy ? { triggeredBy } : {}),
        })),
        anomalies,
      },
    ],
  ]);
}

const kinds = (evaluation: ReturnType<typeof evaluateBatch>) =>
  evaluation.transitions.map((t) => `${t.kind}@${(t.at - NOW) / 1000}`);

describe('threshold rules', () => {
  const over80 = { type: 'threshold', op: '>', value: 80, for_seconds: 10, hysteresis: 5 } as const;

  it('judges a second value in the same millisecond (it replaces the first), not a repeat of it', () => {
    const instant = { ...over80, for_seconds: 0 };
    expect(
      kinds(
        evaluateBatch(
          [target(instant)],
          device([
            [0, 72],
            [0, 91],
          ]),
          NOW,
        ),
      ),
    ).toEqual(['raise@0']);
    const raised = target(instant);
    raised.state = { ...raised.state, lastEventAt: NOW, lastValue: 91 };
    raised.open = true;
    expect(kinds(evaluateBatch([raised], device([[0, 91]]), NOW))).toEqual([]);
  });

  it('raise only once the value held over the limit for for_seconds', () => {
    const rule = target(over80);
    expect(
      kinds(
        evaluateBatch(
          [rule],
          device([
            [0, 85],
            [5, 86],
            [9, 70],
            [12, 90],
            [22, 91],
          ]),
          NOW,
        ),
      ),
    ).toEqual(['raise@22']);
  });

  it('clear only past the hysteresis, and count a return over the limit', () => {
    const rule = target({ ...over80, for_seconds: 0 });
    const result = evaluateBatch(
      [rule],
      device([
        [0, 81],
        [1, 78],
        [2, 82],
        [3, 75.5],
        [4, 75],
      ]),
      NOW,
    );
    expect(kinds(result)).toEqual(['raise@0', 'raise@2', 'clear@4']);
    // Only the first raise notifies; the repeat counts; the clear notifies again... unless quiet.
    expect(result.transitions.map((t) => t.deliveries.map((d) => d.status))).toEqual([
      ['pending'],
      [],
      ['suppressed'],
    ]);
  });

  it('judge outside and inside ranges', () => {
    const outside = target({
      type: 'threshold',
      op: 'outside',
      low: 10,
      high: 20,
      for_seconds: 0,
      hysteresis: 1,
    });
    expect(
      kinds(
        evaluateBatch(
          [outside],
          device([
            [0, 15],
            [1, 21],
            [2, 19.5],
            [3, 19],
          ]),
          NOW,
        ),
      ),
    ).toEqual(['raise@1', 'clear@3']);
    const inside = target({
      type: 'threshold',
      op: 'inside',
      low: 10,
      high: 20,
      for_seconds: 0,
      hysteresis: 0,
    });
    expect(
      kinds(
        evaluateBatch(
          [inside],
          device([
            [0, 5],
            [1, 10],
            [2, 25],
          ]),
          NOW,
        ),
      ),
    ).toEqual(['raise@1', 'clear@2']);
  });

  it('skip readings not newer than the last judged one (a retried or late batch)', () => {
    const rule = target({ ...over80, for_seconds: 0 });
    rule.state.lastEventAt = NOW + 10_000;
    rule.state.lastValue = 99;
    expect(
      evaluateBatch(
        [rule],
        device([
          [5, 99],
          [10, 99],
        ]),
        NOW,
      ).transitions,
    ).toEqual([]);
  });
});

describe('event rules', () => {
  it('count each anomaly at or above the score once', () => {
    const rule = target(
      { type: 'anomaly', min_score: 3, clear_after_minutes: 15 },
      { entityId: null },
    );
    const anomalies = [
      { entityId: 'temperature', timeMs: NOW + 1000, score: 2.5, value: 1 },
      { entityId: 'temperature', timeMs: NOW + 2000, score: 4, value: 2 },
      { entityId: 'vibration', timeMs: NOW + 3000, score: 9, value: 3 },
    ];
    const first = evaluateBatch([rule], device([], anomalies), NOW);
    expect(kinds(first)).toEqual(['raise@2', 'raise@3']);
    expect(rule.state.lastEventAt).toBe(NOW + 3000);
    expect(evaluateBatch([rule], device([], anomalies), NOW).transitions).toEqual([]);
  });

  it('raise on a relay change nobody commanded, not on a commanded one or the first state seen', () => {
    const rule = target({ type: 'relay_uncommanded', clear_after_minutes: 15 }, { entityId: null });
    const result = evaluateBatch(
      [rule],
      device([
        [0, false, 'device'],
        [1, true, 'user:4'],
        [2, true, 'device'],
        [3, false, 'device'],
      ]),
      NOW,
    );
    expect(kinds(result)).toEqual(['raise@3']);
  });
});

describe('the scheduled pass', () => {
  const presence = (status: 'online' | 'offline', minutesAgo: number | null) => ({
    status,
    lastSeenMs: minutesAgo === null ? null : NOW - minutesAgo * 60_000,
    createdAtMs: NOW - 86_400_000,
  });

  it('raises no_data after the silence and clears when data is back', () => {
    const rule = target({ type: 'no_data', minutes: 10 });
    expect(kinds(evaluateSchedule([{ ...rule, presence: presence('online', 9) }], NOW))).toEqual(
      [],
    );
    expect(kinds(evaluateSchedule([{ ...rule, presence: presence('online', 10) }], NOW))).toEqual([
      'raise@0',
    ]);
    expect(
      kinds(evaluateSchedule([{ ...rule, open: true, presence: presence('online', 1) }], NOW)),
    ).toEqual(['clear@0']);
  });

  it('raises offline once offline for the minutes, clears when online', () => {
    const rule = target({ type: 'offline', minutes: 5 });
    expect(kinds(evaluateSchedule([{ ...rule, presence: presence('offline', 4) }], NOW))).toEqual(
      [],
    );
    expect(kinds(evaluateSchedule([{ ...rule, presence: presence('offline', 6) }], NOW))).toEqual([
      'raise@0',
    ]);
    expect(
      kinds(evaluateSchedule([{ ...rule, open: true, presence: presence('online', 0) }], NOW)),
    ).toEqual(['clear@0']);
  });

  it('raises rul_below on a prediction under the value once, clears past the hysteresis', () => {
    const rule = target({ type: 'rul_below', value: 50, hysteresis: 10 }, { entityId: null });
    const predicted = (value: number, minutesAgo: number) => ({
      ...presence('online', 0),
      rul: {
        value,
        low: value - 8,
        high: value + 8,
        unit: 'cycles' as const,
        computedAtMs: NOW - minutesAgo * 60_000,
      },
    });
    expect(evaluateSchedule([{ ...rule, presence: predicted(50, 5) }], NOW).transitions).toEqual(
      [],
    );
    const raised = evaluateSchedule([{ ...rule, presence: predicted(42.04, 5) }], NOW);
    expect(kinds(raised)).toEqual(['raise@-300']);
    expect(raised.transitions[0]?.reason).toBe(
      'remaining useful life 42 cycles (10-90%: 34-50) below 50',
    );
    // The evaluator wrote the prediction's time; the same prediction is not judged again.
    const state = raised.states[0]?.state ?? EMPTY_STATE;
    const open = { ...rule, open: true, state };
    expect(evaluateSchedule([{ ...open, presence: predicted(42.04, 5) }], NOW).transitions).toEqual(
      [],
    );
    // Inside the hysteresis band the alarm stays; past it, it clears.
    const inside = evaluateSchedule([{ ...open, presence: predicted(55, 1) }], NOW);
    expect(inside.transitions).toEqual([]);
    const later = { ...open, state: inside.states[0]?.state ?? state };
    expect(kinds(evaluateSchedule([{ ...later, presence: predicted(60, 0) }], NOW))).toEqual([
      'clear@0',
    ]);
    // No prediction any more (the plan lost predictive maintenance): it clears.
    expect(
      kinds(
        evaluateSchedule([{ ...later, presence: { ...presence('online', 0), rul: null } }], NOW),
      ),
    ).toEqual(['clear@0']);
  });

  it('clears an event alarm after its quiet spell', () => {
    const rule = target({ type: 'anomaly', min_score: 3, clear_after_minutes: 15 });
    rule.open = true;
    rule.state.lastEventAt = NOW - 14 * 60_000;
    expect(
      evaluateSchedule([{ ...rule, presence: presence('online', 0) }], NOW).transitions,
    ).toEqual([]);
    rule.state.lastEventAt = NOW - 15 * 60_000;
    expect(kinds(evaluateSchedule([{ ...rule, presence: presence('online', 0) }], NOW))).toEqual([
      'clear@0',
    ]);
  });
});

describe('webhook signatures', () => {
  it('sign <t>.<body> with HMAC-SHA256 and refuse a changed body, another secret or an old time', () => {
    const body = '{"alarm_id":1}';
    const header = signWebhook('secret-of-sixteen', body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook('secret-of-sixteen', body, header, 1_700_000_100)).toBe(true);
    expect(verifyWebhook('secret-of-sixteen', `${body} `, header, 1_700_000_100)).toBe(false);
    expect(verifyWebhook('another-secret-xx', body, header, 1_700_000_100)).toBe(false);
    expect(verifyWebhook('secret-of-sixteen', body, header, 1_700_000_301)).toBe(false);
  });
});

describe('webhook addresses outside the local stack', () => {
  const production = new DnsWebhookAddressPolicy(false, async (host) =>
    host === 'metadata.example'
      ? ['169.254.169.254']
      : host === 'public.example'
        ? ['93.184.215.14']
        : [],
  );

  it('refuse loopback, private and link-local addresses, by literal or by name', async () => {
    for (const url of [
      'http://127.0.0.1/hook',
      'http://10.1.2.3/hook',
      'http://172.16.0.1/hook',
      'http://[::1]/hook',
      'http://[fd00::1]/hook',
      'http://[::ffff:192.168.0.1]/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://metadata.example/hook',
      'http://nowhere.example/hook',
      'https://user:pw@public.example/hook',
    ]) {
      expect(await production.refusal(url), url).not.toBeNull();
    }
    expect(await production.refusal('https://public.example/hook')).toBeNull();
    expect(
      await new DnsWebhookAddressPolicy(true).refusal('http://127.0.0.1:9000/hook'),
    ).toBeNull();
  });
});

describe('export rows', () => {
  it('quote CSV fields and defuse spreadsheet formulas', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('=SUM(A1)')).toBe("'=SUM(A1)");
    expect(csvField(-1.5)).toBe('-1.5');
    expect(
      formatRows(
        [{ time: '2026-01-01T00:00:00.000Z', deviceId: 'P1', entityId: 't', value: 0.1 }],
        'jsonl',
        'raw',
      ),
    ).toBe('{"time":"2026-01-01T00:00:00.000Z","device_id":"P1","entity_id":"t","value":0.1}\n');
  });
});
