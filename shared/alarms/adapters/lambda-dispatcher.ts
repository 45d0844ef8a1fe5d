import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { DeliveryDispatcher } from '../domain/ports.ts';

/**
 * Hands new deliveries to the notifier function by an asynchronous invocation, so a slow
 * webhook never holds up ingestion; what is lost here is sent by the notifier's scheduled run.
 */
export class LambdaDeliveryDispatcher implements DeliveryDispatcher {
  constructor(
    private readonly client: LambdaClient,
    private readonly functionName: string,
  ) {}

  async dispatch(deliveryIds: number[]): Promise<void> {
    await this.client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: new TextEncoder().encode(JSON.stringify({ deliveryIds })),
      }),
    );
  }
}
