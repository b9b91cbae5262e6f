//! Each integration's recent invocations, kept in memory for the admin's view: what ran, how it
//! ended, what the parser logged, and the request with its secrets redacted.

use serde::Serialize;
use telehook::InvocationLog;

use super::Service;
use crate::storage::IntegrationKey;

/// How many recent invocations the admin API shows per integration.
pub const RECENT_INVOCATIONS: usize = 50;

/// One entry of an integration's recent invocations.
#[derive(Debug, Clone, Serialize)]
pub struct InvocationSummary {
    /// When the request arrived (RFC 3339).
    pub at: String,
    /// The parser version that ran.
    pub version: u32,
    /// `ok`, or the kind of failure.
    pub outcome: &'static str,
    /// The failure's message.
    pub error: Option<String>,
    /// Time in the parser, microseconds.
    pub duration_us: u64,
    /// The request's method.
    pub method: String,
    /// The request's path, with the webhook token and setting values redacted.
    pub path: String,
    /// The request's headers (names in lower case), with setting values redacted.
    pub headers: Vec<(String, String)>,
    /// The request body (cut at 4 KiB), with setting values redacted.
    pub body: String,
    /// What the parser logged.
    pub log: InvocationLog,
}

impl Service {
    /// The integration's recent invocations, newest first.
    pub fn recent_invocations(&self, key: &IntegrationKey) -> Vec<InvocationSummary> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .get(key)
            .map(|entries| entries.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn remember(&self, key: &IntegrationKey, summary: InvocationSummary) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let entries = recent.entry(key.clone()).or_default();
        if entries.len() == RECENT_INVOCATIONS {
            entries.pop_front();
        }
        entries.push_back(summary);
    }
}
