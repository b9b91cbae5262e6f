//! Tenants, integrations, versions, settings, bindings and limits.

use super::{Backend, key};
use crate::limits::IntegrationLimits;
use crate::secrets::SettingsKey;
use crate::storage::{Binding, IntegrationKey, StorageError};

super::conformance!(
    tenants_are_created_once_listed_in_byte_order_and_found_by_token,
    integrations_are_per_tenant_and_go_with_their_tenant,
    versions_are_numbered_per_integration_and_roll_back_to_the_one_before,
    settings_are_sealed_and_a_key_that_cannot_open_them_is_refused,
    bindings_are_replaced_whole,
    limits_are_kept_per_integration,
    components_are_kept_once_by_digest,
    a_shared_secret_is_decided_by_the_first_to_ask_and_opens_with_the_key_only,
);

fn pbx() -> IntegrationKey {
    IntegrationKey::new("acme", "pbx")
}

/// A tenant `acme` with an integration `pbx`.
async fn acme_pbx(backend: &Backend) {
    let storage = &backend.storage;
    storage
        .create_tenant("acme", "Acme", "hash-acme")
        .await
        .expect("a tenant");
    storage
        .create_integration("acme", "pbx", "PBX", "token-1")
        .await
        .expect("an integration");
}

async fn tenants_are_created_once_listed_in_byte_order_and_found_by_token(backend: &Backend) {
    let storage = &backend.storage;
    for id in ["ab", "B", "a-b", "a"] {
        let tenant = storage
            .create_tenant(id, &format!("Tenant {id}"), &format!("hash-{id}"))
            .await
            .expect("created");
        assert_eq!(tenant.id, id);
        assert!(tenant.created_at.ends_with('Z'), "{}", tenant.created_at);
    }
    for (id, token) in [("a", "hash-new"), ("new", "hash-a")] {
        let err = storage
            .create_tenant(id, "Again", token)
            .await
            .expect_err("the id and the token are taken");
        assert!(
            matches!(&err, StorageError::Conflict(what) if what == &format!("tenant `{id}`")),
            "{err}"
        );
    }
    let ids: Vec<String> = storage
        .tenants()
        .await
        .expect("reads")
        .into_iter()
        .map(|tenant| tenant.id)
        .collect();
    assert_eq!(
        ids,
        ["B", "a", "a-b", "ab"],
        "by bytes, whatever the locale"
    );
    assert_eq!(
        storage.tenant_by_token("hash-a-b").await.expect("reads"),
        Some("a-b".to_owned())
    );
    assert_eq!(
        storage.tenant_by_token("nobody").await.expect("reads"),
        None
    );
    storage.delete_tenant("a").await.expect("deleted");
    let err = storage.delete_tenant("a").await.expect_err("gone");
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
    assert_eq!(storage.tenants().await.expect("reads").len(), 3);
}

async fn integrations_are_per_tenant_and_go_with_their_tenant(backend: &Backend) {
    let storage = &backend.storage;
    let err = storage
        .create_integration("acme", "pbx", "PBX", "token-1")
        .await
        .expect_err("no tenant yet");
    assert!(
        matches!(&err, StorageError::NotFound(what) if what == "tenant `acme`"),
        "{err}"
    );
    acme_pbx(backend).await;
    storage
        .create_tenant("rival", "Rival", "hash-rival")
        .await
        .expect("a tenant");
    let err = storage
        .create_integration("acme", "pbx", "Again", "token-2")
        .await
        .expect_err("taken within the tenant");
    assert!(
        matches!(&err, StorageError::Conflict(what) if what == "integration `pbx`"),
        "{err}"
    );
    storage
        .create_integration("rival", "pbx", "Theirs", "token-3")
        .await
        .expect("free in another tenant");
    storage
        .create_integration("acme", "Alpha", "Alpha", "token-4")
        .await
        .expect("another");

    let integration = storage
        .integration(&pbx())
        .await
        .expect("reads")
        .expect("there");
    assert_eq!(
        (
            integration.name.as_str(),
            integration.webhook_token.as_str(),
            integration.active_version
        ),
        ("PBX", "token-1", None)
    );
    let ids: Vec<String> = storage
        .integrations("acme")
        .await
        .expect("reads")
        .into_iter()
        .map(|integration| integration.id)
        .collect();
    assert_eq!(ids, ["Alpha", "pbx"]);
    let mut owners: Vec<String> = storage
        .integrations_named("pbx")
        .await
        .expect("reads")
        .into_iter()
        .map(|integration| integration.tenant_id)
        .collect();
    owners.sort();
    assert_eq!(owners, ["acme", "rival"]);

    storage
        .set_webhook_token(&pbx(), "token-new")
        .await
        .expect("set");
    assert_eq!(
        storage
            .integration(&pbx())
            .await
            .expect("reads")
            .expect("there")
            .webhook_token,
        "token-new"
    );
    let missing = IntegrationKey::new("acme", "missing");
    for err in [
        storage
            .set_webhook_token(&missing, "t")
            .await
            .expect_err("missing"),
        storage
            .delete_integration(&missing)
            .await
            .expect_err("missing"),
    ] {
        assert!(
            matches!(&err, StorageError::NotFound(what) if what == "integration `missing`"),
            "{err}"
        );
    }

    storage
        .delete_integration(&IntegrationKey::new("rival", "pbx"))
        .await
        .expect("deleted");
    assert!(
        storage.integration(&pbx()).await.expect("reads").is_some(),
        "acme's stays"
    );
    storage.delete_tenant("acme").await.expect("deleted");
    assert!(
        storage
            .integrations("acme")
            .await
            .expect("reads")
            .is_empty()
    );
    assert!(
        storage
            .integrations_named("pbx")
            .await
            .expect("reads")
            .is_empty()
    );
}

async fn versions_are_numbered_per_integration_and_roll_back_to_the_one_before(backend: &Backend) {
    let storage = &backend.storage;
    acme_pbx(backend).await;
    let first = storage
        .add_version(&pbx(), "sha-1", 10)
        .await
        .expect("added");
    let second = storage
        .add_version(&pbx(), "sha-2", 20)
        .await
        .expect("added");
    assert_eq!((first.version, second.version), (1, 2));
    assert_eq!(
        storage.versions(&pbx()).await.expect("reads"),
        [first, second]
    );
    assert_eq!(storage.rollback_target(&pbx()).await.expect("reads"), None);

    storage.activate(&pbx(), 1).await.expect("activated");
    assert_eq!(storage.rollback_target(&pbx()).await.expect("reads"), None);
    storage.activate(&pbx(), 2).await.expect("activated");
    assert_eq!(
        storage.rollback_target(&pbx()).await.expect("reads"),
        Some(1)
    );
    assert_eq!(
        storage
            .integration(&pbx())
            .await
            .expect("reads")
            .expect("there")
            .active_version,
        Some(2)
    );
    let err = storage
        .activate(&pbx(), 3)
        .await
        .expect_err("no such version");
    assert!(
        matches!(&err, StorageError::NotFound(what) if what == "version 3 of integration `pbx`"),
        "{err}"
    );
    storage.activate(&pbx(), 1).await.expect("rolled back");
    assert_eq!(
        storage.rollback_target(&pbx()).await.expect("reads"),
        Some(2)
    );
}

async fn settings_are_sealed_and_a_key_that_cannot_open_them_is_refused(backend: &Backend) {
    let storage = &backend.storage;
    acme_pbx(backend).await;
    assert_eq!(
        storage
            .settings(&pbx())
            .await
            .expect("reads")
            .keys()
            .count(),
        0
    );
    storage
        .update_settings(
            &pbx(),
            &[
                ("api_key".into(), Some("k-1".into())),
                ("api_secret".into(), Some("hunter22".into())),
            ],
        )
        .await
        .expect("set");
    storage
        .update_settings(
            &pbx(),
            &[
                ("api_key".into(), None),
                ("api_secret".into(), Some("hunter23".into())),
            ],
        )
        .await
        .expect("changed");
    let settings = storage.settings(&pbx()).await.expect("reads");
    assert_eq!(settings.get("api_secret"), Some("hunter23"));
    assert_eq!(settings.keys().collect::<Vec<_>>(), ["api_secret"]);

    let Err(err) = backend.reopen(SettingsKey::from_bytes(&[8; 32])).await else {
        panic!("another key was taken");
    };
    assert!(
        matches!(&err, StorageError::WrongKey(setting) if setting == "acme/pbx/api_secret"),
        "{err}"
    );
    let reopened = backend.reopen(key()).await.expect("the right key opens");
    assert_eq!(
        reopened
            .settings(&pbx())
            .await
            .expect("reads")
            .get("api_secret"),
        Some("hunter23")
    );
}

async fn bindings_are_replaced_whole(backend: &Backend) {
    let storage = &backend.storage;
    acme_pbx(backend).await;
    let binding = |extension: &str, user_id: &str| Binding {
        extension: extension.into(),
        user_id: user_id.into(),
    };
    storage
        .replace_bindings(&pbx(), &[binding("102", "bob"), binding("101", "anna")])
        .await
        .expect("replaced");
    assert_eq!(
        storage.bindings(&pbx()).await.expect("reads"),
        [binding("101", "anna"), binding("102", "bob")]
    );
    storage
        .replace_bindings(&pbx(), &[binding("103", "carl")])
        .await
        .expect("replaced");
    assert_eq!(
        storage.bindings(&pbx()).await.expect("reads"),
        [binding("103", "carl")]
    );
    storage
        .replace_bindings(&pbx(), &[binding("104", "dora"), binding("104", "ed")])
        .await
        .expect_err("an extension twice");
    assert_eq!(
        storage.bindings(&pbx()).await.expect("reads"),
        [binding("103", "carl")],
        "a failed replacement changes nothing"
    );
}

async fn limits_are_kept_per_integration(backend: &Backend) {
    let storage = &backend.storage;
    acme_pbx(backend).await;
    assert_eq!(
        storage.limits(&pbx()).await.expect("reads"),
        IntegrationLimits::default()
    );
    let limits = IntegrationLimits {
        timeout_ms: Some(250),
        ..IntegrationLimits::default()
    };
    storage.set_limits(&pbx(), &limits).await.expect("set");
    assert_eq!(storage.limits(&pbx()).await.expect("reads"), limits);
    let err = storage
        .set_limits(&IntegrationKey::new("acme", "missing"), &limits)
        .await
        .expect_err("no such integration");
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
}

async fn components_are_kept_once_by_digest(backend: &Backend) {
    let storage = &backend.storage;
    assert_eq!(storage.component("a1").await.expect("reads"), None);
    let bytes: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    storage.put_component("a1", &bytes).await.expect("stored");
    storage
        .put_component("a1", &bytes)
        .await
        .expect("the same upload again changes nothing");
    storage.put_component("b2", b"\0asm").await.expect("stored");
    assert_eq!(storage.component("a1").await.expect("reads"), Some(bytes));
    assert_eq!(
        storage.component("b2").await.expect("reads").as_deref(),
        Some(&b"\0asm"[..])
    );
}

async fn a_shared_secret_is_decided_by_the_first_to_ask_and_opens_with_the_key_only(
    backend: &Backend,
) {
    let first = backend.storage.shared_secret("admin-token", "t-1").await;
    assert_eq!(first.expect("stored"), "t-1");
    let other_node = backend.reopen(key()).await.expect("the same key opens");
    assert_eq!(
        other_node
            .shared_secret("admin-token", "t-2")
            .await
            .expect("reads"),
        "t-1",
        "the first node to ask decided"
    );
    assert_eq!(
        other_node
            .shared_secret("cluster", "c-9")
            .await
            .expect("stored"),
        "c-9"
    );
    let wrong_key = backend
        .reopen(SettingsKey::from_bytes(&[8; 32]))
        .await
        .expect("no settings to refuse it yet");
    let Err(err) = wrong_key.shared_secret("admin-token", "t-3").await else {
        panic!("another key opened the secret");
    };
    assert!(
        matches!(&err, StorageError::WrongKey(what) if what == "shared/admin-token"),
        "{err}"
    );
}
