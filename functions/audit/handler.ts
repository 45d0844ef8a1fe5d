import { auditRoutes } from '../../shared/audit/adapters/http.ts';
import { auditService } from '../../shared/audit/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

export const handler = httpApi(auditRoutes(auditService()), {
  authenticator: authenticator(),
  logger: logger(),
});
