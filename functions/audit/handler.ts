import { auditService } from '../../shared/audit/composition.ts';
import { authenticator, logger } from '../../shared/composition.ts';
import { httpApi } from '../../shared/http/api.ts';

const audit = auditService();

export const handler = httpApi(
  'audit',
  {
    'GET /api/audit': ({ caller, query }) =>
      audit.list(caller, {
        actor: query.actor,
        action: query.action,
        from: query.from,
        to: query.to,
        before: query.cursor,
        limit: query.limit ?? 100,
      }),
  },
  { authenticator: authenticator(), logger: logger() },
);
