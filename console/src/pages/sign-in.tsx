/**
 * Signing in: the admin token (in `DATA_DIR/admin-token`) or a tenant's token (returned when
 * the tenant was created). `GET /admin/whoami` says which it is before anything is shown.
 */

import { useEffect, useState } from 'preact/hooks';

import { Api, type Whoami } from '../api';
import { ErrorNote, useAction } from '../ui';

export function SignInPage({ reason, onSignedIn }: { reason?: string; onSignedIn: (token: string, who: Whoami) => void }) {
  const [token, setToken] = useState('');
  const action = useAction();
  useEffect(() => {
    document.title = 'Sign in · telehook';
  }, []);

  const submit = (event: Event) => {
    event.preventDefault();
    const trimmed = token.trim();
    void action.run(async () => onSignedIn(trimmed, await new Api(trimmed).whoami()));
  };

  return (
    <main class="container sign-in">
      <article>
        <header>
          <h1>telehook console</h1>
          <p class="muted">Integrations, parser versions, invocations and live calls.</p>
        </header>
        {reason && (
          <p class="note warn" role="status">
            {reason}
          </p>
        )}
        <form onSubmit={submit}>
          <label for="token">Token</label>
          <input
            id="token"
            type="password"
            name="token"
            autoComplete="current-password"
            required
            autoFocus
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            aria-describedby="token-help"
            aria-invalid={action.error ? true : undefined}
          />
          <small id="token-help">
            The admin token (<code>telehook-data/admin-token</code>) or a tenant's token. It is kept in this tab only.
          </small>
          <ErrorNote error={action.error} />
          <button type="submit" aria-busy={action.busy} disabled={action.busy}>
            Sign in
          </button>
        </form>
      </article>
    </main>
  );
}
