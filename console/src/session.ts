/**
 * Who is signed in: the token, the client made from it and what `GET /admin/whoami` said it
 * is. The token is kept in the tab's session storage, so a reload stays signed in while
 * closing the tab forgets it; it is never written anywhere else.
 */

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

import { Api, type Whoami } from './api';

const STORAGE_KEY = 'telehook.console.token';

export interface Session {
  api: Api;
  who: Whoami;
  signOut: (reason?: string) => void;
}

export const SessionContext = createContext<Session | null>(null);

/** The signed-in session; only pages behind the sign-in use it. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

export function useApi(): Api {
  return useSession().api;
}

export function isAdmin(who: Whoami): boolean {
  return who.role === 'admin';
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Storage refused (a private window's quota): the session lasts until a reload.
  }
}
