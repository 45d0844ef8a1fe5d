import { AsyncLocalStorage } from 'node:async_hooks';

/** Where the request being served came from: the audit trail's "from where". */
export interface RequestOrigin {
  /** The caller's address as API Gateway saw it. */
  sourceIp: string;
}

const storage = new AsyncLocalStorage<RequestOrigin>();

/** Runs `work` with `origin` visible to everything it calls, however deep. */
export function withRequestOrigin<T>(origin: RequestOrigin, work: () => T): T {
  return storage.run(origin, work);
}

/** The origin of the request being served, if any (none in scheduled and stream work). */
export function requestOrigin(): RequestOrigin | undefined {
  return storage.getStore();
}
