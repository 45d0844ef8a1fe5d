/**
 * serverless.yml's `httpApi` events, generated from the route table into
 * infra/http-events.json, which each HTTP function's `events` reads with `${file(...)}`:
 *
 *   npm run http:events
 *
 * test/unit/route-table.test.ts fails while the checked-in file differs from what this makes,
 * so a route added to the table is deployed by regenerating, never by hand-copying a line.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type HttpFunction, routesOf, routeTable } from '../shared/http/route-table.ts';

export const HTTP_EVENTS_FILE = path.join(import.meta.dirname, 'http-events.json');

/** `{ <function>: [{ httpApi: 'METHOD /path' }, ...] }`, functions and routes in table order. */
export function httpEvents(): string {
  const functions = [...new Set(Object.values(routeTable).map((route) => route.function))];
  const events = Object.fromEntries(
    functions.map((fn: HttpFunction) => [
      fn,
      routesOf(fn).map((routeKey) => ({ httpApi: routeKey })),
    ]),
  );
  return `${JSON.stringify(events, null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(HTTP_EVENTS_FILE, httpEvents());
  console.log(`wrote ${path.relative(process.cwd(), HTTP_EVENTS_FILE)}`);
}
