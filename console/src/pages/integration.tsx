/**
 * An integration's page: its heading and tabs, each tab a page of its own (its own route, so
 * a link or a reload lands on it). The integration itself is loaded here, since activation
 * and rollback change what the heading shows.
 */

import type { Integration } from '../api';
import { href, TABS, type Tab } from '../router';
import { isAdmin, useApi, useSession } from '../session';
import { Load, useLoad } from '../ui';
import { BindingsTab } from './bindings';
import { CallsTab } from './calls';
import { InvocationsTab } from './invocations';
import { OverviewTab } from './overview';
import { SettingsTab } from './settings';
import { VersionsTab } from './versions';

const TAB_NAMES: Record<Tab, string> = {
  overview: 'Overview',
  versions: 'Versions',
  settings: 'Settings',
  bindings: 'Bindings',
  invocations: 'Invocations',
  calls: 'Calls',
};

/** What each tab gets: which integration, and a way to reload it after a change. */
export interface TabProps {
  tenant: string;
  integration: Integration;
  reload: () => Promise<void>;
}

export function IntegrationPage({ tenant, integration: id, tab }: { tenant: string; integration: string; tab: Tab }) {
  const api = useApi();
  const integration = useLoad(() => api.integration(tenant, id), [tenant, id]);

  return (
    <>
      <Breadcrumb tenant={tenant} integration={id} />
      <hgroup>
        <h1 tabIndex={-1}>{id}</h1>
        <p data-testid="active-version">
          {integration.data
            ? integration.data.active_version !== null
              ? `Version ${integration.data.active_version} active`
              : 'No active version'
            : '\u00a0'}
        </p>
      </hgroup>
      <nav class="tabs" aria-label="Integration">
        <ul>
          {TABS.map((name) => (
            <li key={name}>
              <a href={href({ page: 'integration', tenant, integration: id, tab: name })} aria-current={name === tab ? 'page' : undefined}>
                {TAB_NAMES[name]}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <Load state={integration} what="the integration">
        {(data) => <TabContent tab={tab} tenant={tenant} integration={data} reload={integration.reload} />}
      </Load>
    </>
  );
}

function TabContent({ tab, ...props }: TabProps & { tab: Tab }) {
  const key = `${props.tenant}/${props.integration.id}`;
  switch (tab) {
    case 'overview':
      return <OverviewTab key={key} {...props} />;
    case 'versions':
      return <VersionsTab key={key} {...props} />;
    case 'settings':
      return <SettingsTab key={key} {...props} />;
    case 'bindings':
      return <BindingsTab key={key} {...props} />;
    case 'invocations':
      return <InvocationsTab key={key} {...props} />;
    case 'calls':
      return <CallsTab key={key} {...props} />;
  }
}

export function Breadcrumb({ tenant, integration, last }: { tenant: string; integration: string; last?: string }) {
  const { who } = useSession();
  return (
    <nav aria-label="breadcrumb">
      <ul>
        {isAdmin(who) && (
          <li>
            <a href={href({ page: 'tenants' })}>Tenants</a>
          </li>
        )}
        <li>
          <a href={href({ page: 'tenant', tenant })}>{tenant}</a>
        </li>
        {last ? (
          <>
            <li>
              <a href={href({ page: 'integration', tenant, integration, tab: 'calls' })}>{integration}</a>
            </li>
            <li aria-current="page">{last}</li>
          </>
        ) : (
          <li aria-current="page">{integration}</li>
        )}
      </ul>
    </nav>
  );
}
