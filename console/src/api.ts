/**
 * The admin API as the console sees it: every shape it reads (kept here, in one place, so that
 * a change of the server's JSON is one edit) and a small client that turns the server's
 * `{"error": message}` answers into an {@link ApiError} carrying that message, which the page
 * shows next to what the person did.
 */

/** Who the token belongs to (`GET /admin/whoami`). */
export type Whoami = { role: 'admin' } | { role: 'tenant'; tenant: string };

export interface Tenant {
  id: string;
  name: string;
  created_at: string;
}

/** `POST /admin/tenants`: the tenant, with its token (shown this once). */
export interface CreatedTenant extends Tenant {
  token: string;
}

export interface Integration {
  id: string;
  tenant_id: string;
  name: string;
  active_version: number | null;
  created_at: string;
  webhook_url: string;
}

export interface Version {
  version: number;
  sha256: string;
  size: number;
  uploaded_at: string;
  check: string;
  active: boolean;
}

/** `POST I/versions`: the stored version, which passed the check. */
export interface UploadedVersion {
  version: number;
  sha256: string;
  size: number;
  uploaded_at: string;
  check: string;
}

export type BreakerState = 'closed' | 'open' | 'half_open';

/** One parser failure the circuit breaker counted. */
export interface Failure {
  at: string;
  kind: string;
  message: string;
}

/** `GET I/health`: the circuit breaker of the active version. */
export interface Health {
  state: BreakerState;
  consecutive_failures: number;
  total_failures: number;
  retry_in_ms: number | null;
  last_errors: Failure[];
  misconfigured: { at: string; setting: string; message: string } | null;
}

/** The limits an integration sets itself; `null` (or absent) keeps the host's default. */
export interface OwnLimits {
  timeout_ms?: number | null;
  memory_bytes?: number | null;
  max_concurrency?: number | null;
  max_queue?: number | null;
  rate_per_second?: number | null;
  burst?: number | null;
}

/** The limits an integration's requests run under. */
export interface EffectiveLimits {
  timeout_ms: number;
  memory_bytes: number;
  max_concurrency: number;
  max_queue: number;
  queue_wait_ms: number;
  rate_per_second: number | null;
  burst: number | null;
}

export interface Limits {
  own: OwnLimits;
  effective: EffectiveLimits;
}

export interface Binding {
  extension: string;
  user_id: string;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface LogLine {
  level: LogLevel;
  message: string;
}

/** What a parser logged in one invocation, and how many lines past the limit it dropped. */
export interface InvocationLog {
  lines: LogLine[];
  dropped: number;
}

/** One of an integration's recent invocations, its secrets redacted by the server. */
export interface Invocation {
  at: string;
  version: number;
  /** `ok`, or the kind of failure (`rejected`, `trap`, `invalid`, ...). */
  outcome: string;
  error: string | null;
  duration_us: number;
  method: string;
  path: string;
  headers?: [string, string][];
  body: string;
  log: InvocationLog;
}

/** `GET I/activity`: the last half hour in buckets, oldest first, empty buckets left out. */
export interface Activity {
  bucket_secs: number;
  buckets: ActivityBucket[];
}

export interface ActivityBucket {
  at: string;
  outcomes: Record<string, number>;
  p50_us: number | null;
  p99_us: number | null;
}

/** A request as `telehook run` reads it, which the trial run takes. */
export interface TrialRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  received_at?: string;
}

export type Direction = 'in' | 'out' | 'internal';
export type CallState = 'ringing' | 'answered' | 'ended';

export interface CallRecord {
  call_id: string | null;
  direction: Direction | null;
  disposition: string;
  src_phone: string | null;
  src_phone_ext: string | null;
  dst_phone: string | null;
  dst_phone_ext: string | null;
  /** Seconds. */
  duration: number;
  /** Opaque data the platform hands back to the provider to get the recording. */
  call: string;
}

export interface TelephonyEvent {
  event: 'notify_start' | 'notify_answer' | 'notify_end';
  direction: Direction | null;
  disposition: string;
  src_phone: string | null;
  src_phone_ext: string | null;
  dst_phone: string | null;
  dst_phone_ext: string | null;
  call_id: string | null;
}

/** The parse result: every part optional. */
export interface Outcome {
  event: TelephonyEvent | null;
  call_record: CallRecord | null;
  response: { status: number; headers: [string, string][]; body?: string; body_base64?: string } | null;
  delivery_id?: string;
}

/** `POST I/versions/{n}/test`, as 200 (`outcome`) or 422 (`error`, `kind`, `violations`). */
export interface TrialResult {
  outcome?: Outcome;
  error?: string;
  kind?: string;
  violations?: { field: string; message: string }[];
  log?: InvocationLog;
  duration_us?: number;
}

export interface Call {
  id: string;
  tenant_id: string;
  integration_id: string;
  provider_call_id: string | null;
  state: CallState;
  disposition: string;
  closed_by: 'provider' | 'timeout' | null;
  direction: Direction;
  src_phone: string;
  src_phone_ext: string | null;
  dst_phone: string;
  dst_phone_ext: string | null;
  started_at: string | null;
  answered_at: string | null;
  ended_at: string | null;
  first_event_at: string;
  last_event_at: string;
  users: string[];
  record: CallRecord | null;
  first_seq: number;
  last_seq: number;
}

export interface CallPage {
  calls: Call[];
  next: string | null;
}

export interface StoredEvent {
  seq: number;
  tenant_id: string;
  integration_id: string;
  version: number;
  received_at: string;
  event: TelephonyEvent | null;
  call_record: CallRecord | null;
  users: string[];
  call: string | null;
  unresolved: boolean;
}

export interface CallDetail {
  call: Call;
  events: StoredEvent[];
}

/** The `data:` of a `call.updated` event on `/stream/calls` (and a forwarded update's body). */
export interface CallUpdateMessage {
  type: 'call.updated';
  timestamp: string;
  data: CallUpdate;
}

/** One change of a call, at its `position` in the order of all updates. */
export interface CallUpdate {
  position: number;
  tenant: string;
  integration: string;
  seq: number | null;
  call: Call;
}

export interface CallFilter {
  user?: string;
  state?: CallState | '';
  since?: string;
  until?: string;
  before?: string;
  limit?: number;
}

/** An answer of the API that is not a success, with the server's own words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The parsed body, for answers that carry more than `error` (a trial's 422). */
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** `/admin/tenants/{t}/integrations/{i}`, with each id escaped. */
export function integrationPath(tenant: string, integration: string): string {
  return `/admin/tenants/${encodeURIComponent(tenant)}/integrations/${encodeURIComponent(integration)}`;
}

/** The client of one token. */
export class Api {
  /**
   * `onUnauthorized` hears a `401` on any request: the token was revoked (a new admin token,
   * a deleted tenant), and the page signs out.
   */
  constructor(
    readonly token: string,
    private readonly onUnauthorized: (error: ApiError) => void = () => {},
  ) {}

  /**
   * One request; JSON both ways unless `body` is a `Blob` (a component upload). A `4xx`/`5xx`
   * throws an {@link ApiError} with the server's `error`, or a sentence naming the status when
   * the body is not the API's JSON (a proxy's error page, a lost connection).
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    let payload: BodyInit | undefined;
    if (body instanceof Blob) {
      headers['Content-Type'] = 'application/wasm';
      payload = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(path, { method, headers, body: payload });
    } catch (err) {
      throw new ApiError(0, `The server could not be reached (${(err as Error).message}).`);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      const message =
        parsed && typeof parsed === 'object' && typeof (parsed as { error?: unknown }).error === 'string'
          ? (parsed as { error: string }).error
          : `The server answered ${response.status} ${response.statusText}.`;
      const error = new ApiError(response.status, message, parsed);
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return parsed as T;
  }

  whoami = () => this.request<Whoami>('GET', '/admin/whoami');

  tenants = () => this.request<Tenant[]>('GET', '/admin/tenants');
  createTenant = (id: string, name?: string) =>
    this.request<CreatedTenant>('POST', '/admin/tenants', name ? { id, name } : { id });
  deleteTenant = (tenant: string) =>
    this.request<void>('DELETE', `/admin/tenants/${encodeURIComponent(tenant)}`);

  integrations = (tenant: string) =>
    this.request<Integration[]>('GET', `/admin/tenants/${encodeURIComponent(tenant)}/integrations`);
  createIntegration = (tenant: string, id: string, name?: string) =>
    this.request<Integration>(
      'POST',
      `/admin/tenants/${encodeURIComponent(tenant)}/integrations`,
      name ? { id, name } : { id },
    );
  integration = (t: string, i: string) => this.request<Integration>('GET', integrationPath(t, i));
  deleteIntegration = (t: string, i: string) => this.request<void>('DELETE', integrationPath(t, i));

  versions = (t: string, i: string) => this.request<Version[]>('GET', `${integrationPath(t, i)}/versions`);
  upload = (t: string, i: string, component: Blob) =>
    this.request<UploadedVersion>('POST', `${integrationPath(t, i)}/versions`, component);
  activate = (t: string, i: string, version: number) =>
    this.request<{ active_version: number }>('POST', `${integrationPath(t, i)}/versions/${version}/activate`);
  rollback = (t: string, i: string) =>
    this.request<{ active_version: number }>('POST', `${integrationPath(t, i)}/rollback`);

  /** A trial run: the 422 of a failed parse is a result to show, not an error. */
  async trial(t: string, i: string, version: number, request: TrialRequest): Promise<TrialResult> {
    try {
      return await this.request<TrialResult>('POST', `${integrationPath(t, i)}/versions/${version}/test`, request);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.body && typeof err.body === 'object') {
        return err.body as TrialResult;
      }
      throw err;
    }
  }

  settings = (t: string, i: string) => this.request<{ keys: string[] }>('GET', `${integrationPath(t, i)}/settings`);
  /** Sets keys to values; `null` removes a key. */
  updateSettings = (t: string, i: string, changes: Record<string, string | null>) =>
    this.request<{ keys: string[] }>('PATCH', `${integrationPath(t, i)}/settings`, changes);

  bindings = (t: string, i: string) => this.request<Binding[]>('GET', `${integrationPath(t, i)}/bindings`);
  replaceBindings = (t: string, i: string, bindings: Binding[]) =>
    this.request<Binding[]>('PUT', `${integrationPath(t, i)}/bindings`, bindings);

  limits = (t: string, i: string) => this.request<Limits>('GET', `${integrationPath(t, i)}/limits`);
  replaceLimits = (t: string, i: string, own: OwnLimits) =>
    this.request<Limits>('PUT', `${integrationPath(t, i)}/limits`, own);

  health = (t: string, i: string) => this.request<Health>('GET', `${integrationPath(t, i)}/health`);
  resetHealth = (t: string, i: string) => this.request<Health>('POST', `${integrationPath(t, i)}/health/reset`);

  webhook = (t: string, i: string) => this.request<{ url: string }>('GET', `${integrationPath(t, i)}/webhook`);
  regenerateWebhook = (t: string, i: string) =>
    this.request<{ url: string }>('POST', `${integrationPath(t, i)}/webhook/regenerate`);

  invocations = (t: string, i: string) => this.request<Invocation[]>('GET', `${integrationPath(t, i)}/invocations`);
  activity = (t: string, i: string) => this.request<Activity>('GET', `${integrationPath(t, i)}/activity`);

  calls(t: string, i: string, filter: CallFilter = {}): Promise<CallPage> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) {
      if (value !== undefined && value !== '') query.set(key, String(value));
    }
    const suffix = query.size ? `?${query}` : '';
    return this.request<CallPage>('GET', `${integrationPath(t, i)}/calls${suffix}`);
  }
  call = (t: string, i: string, call: string) =>
    this.request<CallDetail>('GET', `${integrationPath(t, i)}/calls/${encodeURIComponent(call)}`);
}
