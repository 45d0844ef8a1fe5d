import { type IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane';
import type { CommandPublisher } from '../domain/ports.ts';

/**
 * AWS IoT's data-plane Publish. Locally the same client talks to the stack's data-plane
 * endpoint (IOT_DATA_ENDPOINT), which publishes to Mosquitto.
 */
export class IotDataPlanePublisher implements CommandPublisher {
  constructor(private readonly client: IoTDataPlaneClient) {}

  async publish(topic: string, payload: unknown): Promise<void> {
    await this.client.send(
      new PublishCommand({
        topic,
        qos: 1,
        payload: new TextEncoder().encode(JSON.stringify(payload)),
      }),
    );
  }
}
