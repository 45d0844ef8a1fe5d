import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/devices/12`): a static bucket behind CloudFront serves index.html for `/`
 * only, so the route must live in the fragment to survive a reload.
 */
export type Route =
  | { name: 'signin' }
  | { name: 'signup' }
  | { name: 'devices' }
  | { name: 'device'; id: number }
  | { name: 'tenant' }
  | { name: 'alarms' }
  | { name: 'activity' }
  | { name: 'models' }
  | { name: 'notfound'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/' || path === '/devices') return { name: 'devices' };
  if (path === '/signin') return { name: 'signin' };
  if (path === '/signup') return { name: 'signup' };
  if (path === '/tenant') return { name: 'tenant' };
  if (path === '/alarms') return { name: 'alarms' };
  if (path === '/activity') return { name: 'activity' };
  if (path === '/models') return { name: 'models' };
  const device = /^\/devices\/([1-9][0-9]{0,9})$/.exec(path);
  if (device?.[1]) return { name: 'device', id: Number(device[1]) };
  return { name: 'notfound', path };
}

export function href(route: Route): string {
  switch (route.name) {
    case 'device':
      return `#/devices/${route.id}`;
    case 'notfound':
      return `#${route.path}`;
    default:
      return `#/${route.name}`;
  }
}

export function navigate(route: Route, options: { replace?: boolean } = {}): void {
  const target = href(route);
  if (options.replace) window.location.replace(target);
  else window.location.hash = target;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
