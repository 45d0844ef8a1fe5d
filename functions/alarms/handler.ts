import { alarmRoutes } from '../../shared/alarms/adapters/http.ts';
import { alarmService } from '../../shared/alarms/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

export const handler = httpApi(alarmRoutes(alarmService()), {
  authenticator: authenticator(),
  logger: logger(),
});
