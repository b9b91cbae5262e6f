/**
 * The console's shell: signing in (and back in after a reload), the top navigation, and which
 * page the route shows. What a page may show is the server's decision; the shell only leaves
 * out links the token could not follow (the tenant list for a tenant's token).
 */

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { Api, ApiError, type Whoami } from './api';
import { CallPage } from './pages/call';
import { IntegrationPage } from './pages/integration';
import { LivePage } from './pages/live';
import { SignInPage } from './pages/sign-in';
import { TenantPage } from './pages/tenant';
import { TenantsPage } from './pages/tenants';
import { href, navigate, titleOf, useRoute, type Route } from './router';
import { SessionContext, storeToken, storedToken, type Session } from './session';
import { Loading, message } from './ui';

type Start = { state: 'checking' } | { state: 'signed-out'; reason?: string } | { state: 'signed-in'; api: Api; who: Whoami };

export function App() {
  const [start, setStart] = useState<Start>(() => (storedToken() ? { state: 'checking' } : { state: 'signed-out' }));

  const signOut = (reason?: string) => {
    storeToken(null);
    setStart({ state: 'signed-out', reason });
  };
  /** The session's client: a `401` on any of its requests signs out. */
  const client = (token: string) => new Api(token, () => signOut('The server no longer accepts this token; sign in again.'));
  const signIn = (token: string, who: Whoami) => {
    storeToken(token);
    setStart({ state: 'signed-in', api: client(token), who });
  };

  // A reload: the stored token is asked about again, since it may have been revoked meanwhile.
  useEffect(() => {
    const token = storedToken();
    if (!token) return;
    new Api(token).whoami().then(
      (who) => signIn(token, who),
      (err) =>
        signOut(err instanceof ApiError && err.status === 401 ? 'The stored token is no longer valid; sign in again.' : message(err)),
    );
  }, []);

  if (start.state === 'checking') {
    return (
      <main class="container">
        <Loading what="the session" />
      </main>
    );
  }
  if (start.state === 'signed-out') return <SignInPage reason={start.reason} onSignedIn={signIn} />;
  return <SignedIn api={start.api} who={start.who} signOut={signOut} />;
}

function SignedIn({ api, who, signOut }: Session) {
  const route = useRoute();
  const session = useMemo(() => ({ api, who, signOut }), [api, who]);
  const home: Route = who.role === 'admin' ? { page: 'tenants' } : { page: 'tenant', tenant: who.tenant };

  useEffect(() => {
    if (route.page === 'home') navigate(home);
  }, [route.page]);

  // Moving to another page moves the focus to its heading, as a new document would.
  const first = useRef(true);
  useEffect(() => {
    document.title = titleOf(route);
    if (first.current) {
      first.current = false;
      return;
    }
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [href(route)]);

  return (
    <SessionContext.Provider value={session}>
      <a class="skip-link" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <TopNav who={who} route={route} home={home} signOut={() => signOut()} />
      <main class="container" id="main" tabIndex={-1}>
        <Page route={route} who={who} />
      </main>
    </SessionContext.Provider>
  );
}

function Page({ route, who }: { route: Route; who: Whoami }) {
  switch (route.page) {
    case 'home':
      return <Loading />;
    case 'tenants':
      return who.role === 'admin' ? <TenantsPage /> : <NotAllowed />;
    case 'tenant':
      return <TenantPage tenant={route.tenant} />;
    case 'integration':
      return <IntegrationPage tenant={route.tenant} integration={route.integration} tab={route.tab} />;
    case 'call':
      return <CallPage tenant={route.tenant} integration={route.integration} call={route.call} />;
    case 'live':
      return <LivePage />;
    case 'not-found':
      return (
        <>
          <h1 tabIndex={-1}>Not found</h1>
          <p>
            The console has no page at <code>#/{route.path}</code>. <a href="#/">Go to the start</a>.
          </p>
        </>
      );
  }
}

function NotAllowed() {
  return (
    <>
      <h1 tabIndex={-1}>Admins only</h1>
      <p>
        The list of tenants needs the admin token. <a href="#/">Go to your integrations</a>.
      </p>
    </>
  );
}

/** The top bar: inline links on a wide screen, the same links in a menu on a phone. */
function TopNav({ who, route, home, signOut }: { who: Whoami; route: Route; home: Route; signOut: () => void }) {
  const menu = useRef<HTMLDetailsElement>(null);
  const section = route.page === 'live' ? 'live' : 'home';
  const links = [
    { route: home, label: who.role === 'admin' ? 'Tenants' : 'Integrations', current: section === 'home' },
    { route: { page: 'live' } as Route, label: 'Live calls', current: section === 'live' },
  ];
  const whoText = who.role === 'admin' ? 'admin' : `tenant ${who.tenant}`;
  // A link followed from the phone menu closes it, and so do Escape and a click elsewhere, as
  // a menu's do (a bare <details> stays open).
  useEffect(() => {
    if (menu.current) menu.current.open = false;
  }, [href(route)]);
  useEffect(() => {
    const close = (event: Event) => {
      const details = menu.current;
      if (!details?.open) return;
      if (event instanceof KeyboardEvent) {
        if (event.key !== 'Escape') return;
        details.querySelector('summary')?.focus();
      } else if (details.contains(event.target as Node)) {
        return;
      }
      details.open = false;
    };
    document.addEventListener('click', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('click', close);
      document.removeEventListener('keydown', close);
    };
  }, []);
  return (
    <header class="top">
      <nav class="container" aria-label="Main">
        <ul>
          <li>
            <a href={href(home)} class="brand">
              <strong>telehook</strong>
            </a>
          </li>
        </ul>
        <ul class="wide-only">
          {links.map((link) => (
            <li key={link.label}>
              <a href={href(link.route)} aria-current={link.current ? 'page' : undefined}>
                {link.label}
              </a>
            </li>
          ))}
          <li>
            <small class="muted" data-testid="whoami">
              {whoText}
            </small>
          </li>
          <li>
            <button type="button" class="outline secondary small" onClick={signOut}>
              Sign out
            </button>
          </li>
        </ul>
        <ul class="narrow-only">
          <li>
            <details class="dropdown" ref={menu}>
              <summary role="button" class="outline secondary small">
                Menu
              </summary>
              <ul dir="rtl">
                {links.map((link) => (
                  <li key={link.label}>
                    <a href={href(link.route)} aria-current={link.current ? 'page' : undefined}>
                      {link.label}
                    </a>
                  </li>
                ))}
                <li>
                  <small class="muted">{whoText}</small>
                </li>
                <li>
                  <a
                    href="#/"
                    onClick={(e) => {
                      e.preventDefault();
                      signOut();
                    }}
                  >
                    Sign out
                  </a>
                </li>
              </ul>
            </details>
          </li>
        </ul>
      </nav>
    </header>
  );
}
