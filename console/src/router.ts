/**
 * Hash routing (`#/tenants/acme/integrations/pbx/versions`): the page is one file served at
 * `/console`, so the route lives after the `#`, where the server never sees it and a reload or
 * a bookmark lands on the same view. Small enough to write here rather than take a library.
 */

import { useEffect, useState } from 'preact/hooks';

/** The tabs of an integration's page, in the order the page shows them. */
export const TABS = ['overview', 'versions', 'settings', 'bindings', 'invocations', 'calls'] as const;
export type Tab = (typeof TABS)[number];

export type Route =
  | { page: 'home' }
  | { page: 'tenants' }
  | { page: 'tenant'; tenant: string }
  | { page: 'integration'; tenant: string; integration: string; tab: Tab }
  | { page: 'call'; tenant: string; integration: string; call: string }
  | { page: 'live' }
  | { page: 'not-found'; path: string };

/** The route a location hash names. */
export function parse(hash: string): Route {
  const path = hash.replace(/^#\/?/, '').replace(/\/$/, '');
  const parts = path === '' ? [] : path.split('/').map(decodeURIComponent);
  const [first, tenant, third, integration, tab, call] = parts;
  if (parts.length === 0) return { page: 'home' };
  if (first === 'live' && parts.length === 1) return { page: 'live' };
  if (first === 'tenants') {
    if (parts.length === 1) return { page: 'tenants' };
    if (parts.length === 2) return { page: 'tenant', tenant };
    if (third === 'integrations' && integration) {
      if (parts.length === 4) return { page: 'integration', tenant, integration, tab: 'overview' };
      if (parts.length === 5 && (TABS as readonly string[]).includes(tab)) {
        return { page: 'integration', tenant, integration, tab: tab as Tab };
      }
      if (parts.length === 6 && tab === 'calls') return { page: 'call', tenant, integration, call };
    }
  }
  return { page: 'not-found', path };
}

/** The `href` of a route. */
export function href(route: Route): string {
  const e = encodeURIComponent;
  switch (route.page) {
    case 'home':
      return '#/';
    case 'tenants':
      return '#/tenants';
    case 'tenant':
      return `#/tenants/${e(route.tenant)}`;
    case 'integration': {
      const base = `#/tenants/${e(route.tenant)}/integrations/${e(route.integration)}`;
      return route.tab === 'overview' ? base : `${base}/${route.tab}`;
    }
    case 'call':
      return `#/tenants/${e(route.tenant)}/integrations/${e(route.integration)}/calls/${e(route.call)}`;
    case 'live':
      return '#/live';
    case 'not-found':
      return `#/${route.path}`;
  }
}

/** The document's title on a route, so that tabs and history read as the pages they are. */
export function titleOf(route: Route): string {
  const page = (() => {
    switch (route.page) {
      case 'tenants':
        return 'Tenants';
      case 'tenant':
        return route.tenant;
      case 'integration':
        return `${route.tab[0].toUpperCase()}${route.tab.slice(1)} · ${route.tenant}/${route.integration}`;
      case 'call':
        return `Call · ${route.tenant}/${route.integration}`;
      case 'live':
        return 'Live calls';
      case 'not-found':
        return 'Not found';
      case 'home':
        return null;
    }
  })();
  return page ? `${page} · telehook` : 'telehook console';
}

export function navigate(route: Route): void {
  location.hash = href(route);
}

/** The current route, re-rendering on every change of the hash. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const update = () => setRoute(parse(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
