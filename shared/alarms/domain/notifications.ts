import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookAddressPolicy } from './ports.ts';

export const SIGNATURE_HEADER = 'X-EasySmart-Signature';

/**
 * Signs a webhook body as Stripe does: HMAC-SHA256 with the rule's secret over
 * `<unix seconds>.<raw body>`, sent as `t=<unix seconds>,v1=<hex>`. The time is inside the
 * signature, so a receiver that refuses old `t` values refuses replays.
 */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const digest = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${digest}`;
}

/** What a receiver does: true when the header signs `body` and is at most `toleranceSeconds` old. */
export function verifyWebhook(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = new Map(
    header.split(',').map((part) => part.split('=', 2) as [string, string | undefined]),
  );
  const t = Number(parts.get('t'));
  const given = parts.get('v1');
  if (!Number.isInteger(t) || !given || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1] as string, 'hex');
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Waits before each retry: 30 s, 2 min, 10 min, 30 min, 2 h; then the dead-letter record. */
export const RETRY_DELAYS_SECONDS = [30, 120, 600, 1800, 7200];

/** One delivery as the notifier sends it. */
export interface PendingDelivery {
  id: number;
  tenantId: number;
  alarmId: number;
  channel: 'webhook' | 'email';
  target: string;
  secret: string | null;
  payload: Record<string, unknown>;
  attempts: number;
}

export interface DeliveryResult {
  id: number;
  status: 'delivered' | 'pending' | 'dead';
  error: string | null;
  httpStatus: number | null;
  nextAttemptAt: Date | null;
}

/** Port: due deliveries, leased so two runs never send one twice at once. */
export interface DeliveryStore {
  claim(options: { ids?: number[]; max: number; leaseSeconds: number }): Promise<PendingDelivery[]>;
  record(results: DeliveryResult[]): Promise<void>;
}

/** Port: an HTTP POST; resolves with the status, rejects when nothing answered. */
export interface WebhookSender {
  post(url: string, body: string, headers: Record<string, string>): Promise<number>;
}

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

/** Port: sends one e-mail (SES on AWS, SMTP locally). */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}

function mailOf(payload: Record<string, unknown>): { subject: string; text: string } {
  const alarm = payload as {
    event?: string;
    rule_name?: string;
    severity?: string;
    device_name?: string;
    device_id?: number;
    entity_id?: string | null;
    value?: unknown;
    reason?: string;
    at?: string;
  };
  const what = alarm.event === 'cleared' ? 'Cleared' : 'Alarm';
  const device = alarm.device_name ?? `device ${alarm.device_id}`;
  return {
    subject: `[${(alarm.severity ?? '').toUpperCase()}] ${what}: ${alarm.rule_name} on ${device}`,
    text: [
      `${what}: ${alarm.rule_name}`,
      `Severity: ${alarm.severity}`,
      `Device: ${device}${alarm.entity_id ? `, entity ${alarm.entity_id}` : ''}`,
      `Value: ${JSON.stringify(alarm.value)}`,
      `Why: ${alarm.reason}`,
      `When: ${alarm.at}`,
    ].join('\n'),
  };
}

/**
 * Sends due deliveries: each webhook signed with its rule's secret, each mail once; a
 * failure waits its backoff, and after the last retry the delivery is dead (the
 * dead-letter record stays in the alarm's delivery log).
 */
export class DeliveryService {
  constructor(
    private readonly deps: {
      store: DeliveryStore;
      webhooks: WebhookSender;
      mailer: Mailer;
      addresses: WebhookAddressPolicy;
      clock?: () => Date;
    },
  ) {}

  async run(options: { ids?: number[]; max?: number } = {}): Promise<DeliveryResult[]> {
    const due = await this.deps.store.claim({
      ids: options.ids,
      max: options.max ?? 100,
      leaseSeconds: 60,
    });
    const results = await Promise.all(due.map((delivery) => this.#send(delivery)));
    if (results.length > 0) await this.deps.store.record(results);
    return results;
  }

  async #send(delivery: PendingDelivery): Promise<DeliveryResult> {
    const now = this.deps.clock?.() ?? new Date();
    try {
      if (delivery.channel === 'webhook') {
        // Checked again at sending: a name may resolve elsewhere than when the rule was saved.
        const refusal = await this.deps.addresses.refusal(delivery.target);
        if (refusal) return this.#dead(delivery, `refused: ${refusal}`, null);
        const body = JSON.stringify(delivery.payload);
        const status = await this.deps.webhooks.post(delivery.target, body, {
          'content-type': 'application/json',
          'user-agent': 'EasySmart-Webhooks/1',
          [SIGNATURE_HEADER]: signWebhook(
            delivery.secret ?? '',
            body,
            Math.floor(now.getTime() / 1000),
          ),
        });
        if (status >= 200 && status < 300) {
          return {
            id: delivery.id,
            status: 'delivered',
            error: null,
            httpStatus: status,
            nextAttemptAt: null,
          };
        }
        return this.#retry(delivery, `HTTP ${status}`, status, now);
      }
      const mail = mailOf(delivery.payload);
      await this.deps.mailer.send({ to: delivery.target, ...mail });
      return {
        id: delivery.id,
        status: 'delivered',
        error: null,
        httpStatus: null,
        nextAttemptAt: null,
      };
    } catch (error) {
      return this.#retry(
        delivery,
        String((error as Error)?.message ?? error).slice(0, 500),
        null,
        now,
      );
    }
  }

  #retry(
    delivery: PendingDelivery,
    error: string,
    httpStatus: number | null,
    now: Date,
  ): DeliveryResult {
    const delay = RETRY_DELAYS_SECONDS[delivery.attempts];
    if (delay === undefined) return this.#dead(delivery, error, httpStatus);
    return {
      id: delivery.id,
      status: 'pending',
      error,
      httpStatus,
      nextAttemptAt: new Date(now.getTime() + delay * 1000),
    };
  }

  #dead(delivery: PendingDelivery, error: string, httpStatus: number | null): DeliveryResult {
    return { id: delivery.id, status: 'dead', error, httpStatus, nextAttemptAt: null };
  }
}
