import { modelStore } from '../anomalies/composition.ts';
import { auditTrail } from '../audit/composition.ts';
import { devicePublisher } from '../commands/composition.ts';
import { databasePool, once } from '../composition.ts';
import { config } from '../config.ts';
import { PostgresEdgeStore } from './adapters/postgres-edge-store.ts';
import { EdgeModelService } from './domain/edge-service.ts';

export const edgeModelService = once(
  () =>
    new EdgeModelService(
      new PostgresEdgeStore(databasePool(), modelStore(), config().devices.commandTimeoutSeconds),
      devicePublisher(),
      auditTrail(),
    ),
);
