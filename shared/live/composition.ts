import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { databasePool, once } from '../composition.ts';
import { config, required } from '../config.ts';
import { LiveConnections } from './adapters/api-gateway-live-connections.ts';
import { PostgresLiveConnectionStore } from './adapters/postgres-live-connection-store.ts';
import { LiveSubscriptions } from './domain/subscriptions.ts';

export const liveConnections = once(() => {
  const { aws } = config();
  return new LiveConnections(
    databasePool(),
    new ApiGatewayManagementApiClient({
      region: aws.region,
      endpoint: required(aws.websocketManagementEndpoint, 'WEBSOCKET_MANAGEMENT_ENDPOINT'),
    }),
  );
});

export const liveSubscriptions = once(
  () => new LiveSubscriptions(new PostgresLiveConnectionStore(databasePool())),
);
