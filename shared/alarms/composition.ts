import { LambdaClient } from '@aws-sdk/client-lambda';
import { auditTrail } from '../audit/composition.ts';
import { databasePool, logger, once } from '../composition.ts';
import { config } from '../config.ts';
import { liveConnections } from '../live/composition.ts';
import { LambdaDeliveryDispatcher } from './adapters/lambda-dispatcher.ts';
import { WebSocketAlarmPublisher } from './adapters/live-alarms.ts';
import { NodemailerMailer } from './adapters/mailers.ts';
import { PostgresAlarmRuleStore, PostgresAlarmStore } from './adapters/postgres-alarms.ts';
import {
  PostgresAlarmEvaluationStore,
  PostgresDeliveryStore,
} from './adapters/postgres-evaluation.ts';
import { DnsWebhookAddressPolicy, FetchWebhookSender } from './adapters/webhooks.ts';
import { DeliveryService } from './domain/notifications.ts';
import type { DeliveryDispatcher } from './domain/ports.ts';
import { AlarmEvaluator, AlarmService } from './domain/service.ts';

const webhookAddresses = once(
  () => new DnsWebhookAddressPolicy(config().alarms.allowPrivateWebhooks),
);

export const alarmService = once(
  () =>
    new AlarmService({
      rules: new PostgresAlarmRuleStore(databasePool()),
      alarms: new PostgresAlarmStore(databasePool()),
      audit: auditTrail(),
      webhooks: webhookAddresses(),
    }),
);

export const deliveryService = once(() => {
  const { alarms, aws } = config();
  return new DeliveryService({
    store: new PostgresDeliveryStore(databasePool()),
    webhooks: new FetchWebhookSender(),
    mailer: new NodemailerMailer(
      alarms.mail.transport === 'ses'
        ? { ses: { region: aws.region } }
        : { smtpUrl: alarms.mail.smtpUrl ?? 'smtp://127.0.0.1:25' },
      alarms.mail.from,
    ),
    addresses: webhookAddresses(),
  });
});

/** Without a notifier function (a test calling functions in-process) deliveries are sent here. */
const dispatcher = once<DeliveryDispatcher>(() => {
  const { alarms, aws } = config();
  if (!alarms.notifierFunction) {
    return { dispatch: async (ids) => void (await deliveryService().run({ ids })) };
  }
  return new LambdaDeliveryDispatcher(
    new LambdaClient({
      region: aws.region,
      ...(alarms.lambdaEndpoint ? { endpoint: alarms.lambdaEndpoint } : {}),
    }),
    alarms.notifierFunction,
  );
});

export const alarmEvaluator = once(() => {
  const { aws } = config();
  const log = logger().child({ component: 'alarms' });
  return new AlarmEvaluator({
    store: new PostgresAlarmEvaluationStore(databasePool()),
    dispatcher: dispatcher(),
    // Without a WebSocket API there is nobody to push to.
    live: aws.websocketManagementEndpoint
      ? new WebSocketAlarmPublisher(liveConnections())
      : undefined,
    onError: (what, error) => log.warn(`alarm ${what} failed`, { error }),
  });
});
