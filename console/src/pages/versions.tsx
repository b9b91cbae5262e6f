/**
 * An integration's parser versions: upload a component (the server compiles and checks it;
 * the check's verdict is shown either way), activate one, roll back to the one active before,
 * and try any version on a request before it takes real traffic.
 */

import { useRef, useState } from 'preact/hooks';

import { ApiError, type UploadedVersion, type Version } from '../api';
import { useApi } from '../session';
import { Badge, bytes, ErrorNote, Load, Time, useAction, useLoad } from '../ui';
import type { TabProps } from './integration';
import { TrialDialog } from './trial';

type CheckResult = { ok: true; version: UploadedVersion } | { ok: false; file: string; message: string };

export function VersionsTab({ tenant, integration, reload }: TabProps) {
  const api = useApi();
  const versions = useLoad(() => api.versions(tenant, integration.id), [tenant, integration.id]);
  const change = useAction();
  const [trial, setTrial] = useState<number | null>(null);

  const refresh = async () => {
    await Promise.all([versions.reload(), reload()]);
  };
  const [changed, setChanged] = useState('');
  const activate = (version: number) =>
    void change.run(async () => {
      setChanged('');
      await api.activate(tenant, integration.id, version);
      await refresh();
      setChanged(`Version ${version} is active.`);
    });
  const rollback = () =>
    void change.run(async () => {
      setChanged('');
      const { active_version } = await api.rollback(tenant, integration.id);
      await refresh();
      setChanged(`Rolled back: version ${active_version} is active.`);
    });

  return (
    <>
      <Upload tenant={tenant} integration={integration.id} onUploaded={() => void versions.reload()} />
      <section aria-labelledby="versions-title">
        <div class="section-head">
          <h2 id="versions-title">Versions</h2>
          <button
            type="button"
            class="outline small"
            onClick={rollback}
            disabled={change.busy || (versions.data?.length ?? 0) < 2}
            aria-describedby="rollback-help"
          >
            Roll back
          </button>
        </div>
        <small id="rollback-help" class="muted">
          Roll back re-activates the version that was active before the current one. Requests in flight finish on the
          version they started on.
        </small>
        <p role="status" class="change-status" data-testid="version-status">
          {changed}
        </p>
        <ErrorNote error={change.error} testid="versions-error" />
        <Load state={versions} what="versions">
          {(list) =>
            list.length === 0 ? (
              <p class="muted">No versions yet: upload the parser's component above.</p>
            ) : (
              <div class="overflow-auto">
                <table class="striped" data-testid="versions">
                  <thead>
                    <tr>
                      <th scope="col">Version</th>
                      <th scope="col">Uploaded</th>
                      <th scope="col">Size</th>
                      <th scope="col">SHA-256</th>
                      <th scope="col">Check</th>
                      <th scope="col">
                        <span class="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {[...list].reverse().map((version: Version) => (
                      <tr key={version.version} data-testid="version" data-version={version.version} data-active={String(version.active)}>
                        <th scope="row">
                          {version.version}{' '}
                          {version.active && (
                            <Badge tone="ok" testid="active-badge">
                              active
                            </Badge>
                          )}
                        </th>
                        <td>
                          <Time at={version.uploaded_at} />
                        </td>
                        <td>{bytes(version.size)}</td>
                        <td>
                          <code title={version.sha256}>{version.sha256.slice(0, 12)}</code>
                        </td>
                        <td>{version.check}</td>
                        <td class="actions">
                          <button type="button" class="outline small" onClick={() => setTrial(version.version)}>
                            Trial run<span class="visually-hidden"> of version {version.version}</span>
                          </button>
                          {!version.active && (
                            <button type="button" class="small" disabled={change.busy} onClick={() => activate(version.version)}>
                              Activate<span class="visually-hidden"> version {version.version}</span>
                            </button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Load>
      </section>
      <TrialDialog
        open={trial !== null}
        onClose={() => setTrial(null)}
        tenant={tenant}
        integration={integration}
        version={trial ?? integration.active_version ?? 1}
      />
    </>
  );
}

function Upload({ tenant, integration, onUploaded }: { tenant: string; integration: string; onUploaded: () => void }) {
  const api = useApi();
  const input = useRef<HTMLInputElement>(null);
  const [result, setResult] = useState<CheckResult | null>(null);
  const upload = useAction();

  const submit = (event: Event) => {
    event.preventDefault();
    const file = input.current?.files?.[0];
    if (!file) return;
    setResult(null);
    void upload.run(async () => {
      try {
        const version = await api.upload(tenant, integration, file);
        setResult({ ok: true, version });
        if (input.current) input.current.value = '';
        onUploaded();
      } catch (err) {
        // A 422 is the check's verdict on the component: a result, not a failure of the page.
        if (err instanceof ApiError && err.status === 422) setResult({ ok: false, file: file.name, message: err.message });
        else throw err;
      }
    });
  };

  return (
    <article aria-labelledby="upload-title">
      <header>
        <h2 id="upload-title">Upload a version</h2>
      </header>
      <form onSubmit={submit}>
        <label for="component">
          Parser component (<code>.wasm</code>)
        </label>
        <input ref={input} id="component" type="file" name="component" accept=".wasm,application/wasm" required aria-describedby="upload-help" />
        <small id="upload-help">
          Built with <code>telehook build</code>. The server compiles and checks it, then keeps it as the next version; it
          runs only once activated.
        </small>
        <ErrorNote error={upload.error} />
        <button type="submit" aria-busy={upload.busy} disabled={upload.busy}>
          {upload.busy ? 'Checking…' : 'Upload and check'}
        </button>
      </form>
      {result && <CheckVerdict result={result} />}
    </article>
  );
}

function CheckVerdict({ result }: { result: CheckResult }) {
  if (result.ok) {
    const { version } = result;
    return (
      <div class="note ok" role="status" data-testid="check-result" data-check={version.check} data-version={version.version}>
        <strong>Check: {version.check}.</strong> Stored as version {version.version} ({bytes(version.size)}, SHA-256{' '}
        <code>{version.sha256.slice(0, 12)}</code>). Activate it below when ready.
      </div>
    );
  }
  return (
    <div class="note error" role="alert" data-testid="check-result" data-check="refused">
      <strong>Check refused {result.file}:</strong> {result.message}
    </div>
  );
}
