/**
 * A trial run: one version of the parser on one request, with the integration's settings,
 * nothing stored or dispatched. The request is the `telehook run` file, pasted or taken from
 * one of the integration's recent invocations (as the server kept it: secrets redacted, the
 * body cut at 4 KiB). The answer shows the outcome, or the error with the violated fields,
 * and what the parser logged.
 */

import { useEffect, useState } from 'preact/hooks';

import type { Integration, Invocation, TrialRequest, TrialResult } from '../api';
import { useApi } from '../session';
import { Badge, Dialog, ErrorNote, Json, micros, outcomeTone, useAction, useLoad } from '../ui';
import { LogTable } from './log-table';

/** The request an invocation was, as the trial run reads it. */
export function requestOf(invocation: Invocation): TrialRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of invocation.headers ?? []) {
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return {
    method: invocation.method,
    url: new URL(invocation.path, location.origin).href,
    headers,
    body: invocation.body,
    received_at: invocation.at,
  };
}

function template(integration: Integration): TrialRequest {
  return {
    method: 'POST',
    url: integration.webhook_url,
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  };
}

const pretty = (request: TrialRequest) => JSON.stringify(request, null, 2);

/** The start of a body, to tell recent invocations apart in a list. */
const snippet = (body: string) => (body.length > 48 ? `${body.slice(0, 48)}…` : body);

export function TrialDialog({
  open,
  onClose,
  tenant,
  integration,
  version,
  request,
}: {
  open: boolean;
  onClose: () => void;
  tenant: string;
  integration: Integration;
  version: number;
  /** The request to start from; a template unless given. */
  request?: TrialRequest;
}) {
  return (
    <Dialog open={open} onClose={onClose} title="Trial run" wide testid="trial-dialog">
      {open && <TrialForm tenant={tenant} integration={integration} version={version} request={request} />}
    </Dialog>
  );
}

function TrialForm({
  tenant,
  integration,
  version: initialVersion,
  request,
}: {
  tenant: string;
  integration: Integration;
  version: number;
  request?: TrialRequest;
}) {
  const api = useApi();
  const versions = useLoad(() => api.versions(tenant, integration.id), [tenant, integration.id]);
  const recent = useLoad(() => api.invocations(tenant, integration.id), [tenant, integration.id]);
  const [version, setVersion] = useState(initialVersion);
  const [text, setText] = useState(() => pretty(request ?? template(integration)));
  const [parseError, setParseError] = useState<string | null>(null);
  const [result, setResult] = useState<TrialResult | null>(null);
  const run = useAction();

  useEffect(() => setVersion(initialVersion), [initialVersion]);

  const pick = (value: string) => {
    const invocation = recent.data?.[Number(value)];
    setText(pretty(invocation ? requestOf(invocation) : template(integration)));
    setResult(null);
  };

  const submit = (event: Event) => {
    event.preventDefault();
    let parsed: TrialRequest;
    try {
      parsed = JSON.parse(text) as TrialRequest;
      setParseError(null);
    } catch (err) {
      setParseError(`The request is not JSON: ${(err as Error).message}`);
      return;
    }
    setResult(null);
    void run.run(async () => setResult(await api.trial(tenant, integration.id, version, parsed)));
  };

  return (
    <form onSubmit={submit} data-testid="trial-form">
      <div class="grid">
        <label>
          Version
          <select name="version" value={String(version)} onChange={(e) => setVersion(Number(e.currentTarget.value))}>
            {(versions.data ?? [{ version: initialVersion, active: false }]).map((v) => (
              <option key={v.version} value={String(v.version)}>
                {v.version}
                {v.active ? ' (active)' : ''}
              </option>
            ))}
          </select>
        </label>
        <label>
          Start from
          <select name="start-from" onChange={(e) => pick(e.currentTarget.value)} disabled={!recent.data}>
            <option value="">{request ? 'the chosen request' : 'an empty template'}</option>
            {(recent.data ?? []).map((invocation, n) => (
              <option key={n} value={String(n)}>
                {invocation.outcome} · {new Date(invocation.at).toLocaleTimeString()} · {invocation.method} {snippet(invocation.body)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <label>
        Request (the <code>telehook run</code> file: method, url, headers, body, received_at)
        <textarea
          name="request"
          rows={10}
          spellcheck={false}
          class="code"
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          aria-invalid={parseError ? true : undefined}
        />
      </label>
      {parseError && (
        <p role="alert" class="note error">
          {parseError}
        </p>
      )}
      <ErrorNote error={run.error} />
      <button type="submit" aria-busy={run.busy} disabled={run.busy}>
        Run version {version}
      </button>
      {result && <TrialResultView result={result} />}
    </form>
  );
}

export function TrialResultView({ result }: { result: TrialResult }) {
  const kind = result.outcome ? 'ok' : (result.kind ?? 'failed');
  return (
    <section class="trial-result" aria-labelledby="trial-result-title" data-testid="trial-result" data-kind={kind} aria-live="polite">
      <h3 id="trial-result-title">
        Result <Badge tone={outcomeTone(kind)} testid="trial-kind">{kind}</Badge>{' '}
        {result.duration_us !== undefined && <small class="muted">in {micros(result.duration_us)}</small>}
      </h3>
      {result.error && (
        <p class="note error" data-testid="trial-error">
          {result.error}
        </p>
      )}
      {result.violations && result.violations.length > 0 && (
        <>
          <h4>Validation errors</h4>
          <ul data-testid="trial-violations">
            {result.violations.map((violation, n) => (
              <li key={n}>
                <code>{violation.field}</code>: {violation.message}
              </li>
            ))}
          </ul>
        </>
      )}
      {result.outcome && (
        <>
          <h4>Outcome</h4>
          <Json value={result.outcome} testid="trial-outcome" />
        </>
      )}
      <h4>Log</h4>
      <LogTable log={result.log} testid="trial-log" />
    </section>
  );
}
