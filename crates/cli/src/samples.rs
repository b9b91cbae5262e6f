//! `telehook test DIR`: every sample of a parser, run and compared with what it should give.
//!
//! A parser's samples live in `DIR/samples` (or `DIR` itself): `NAME.request.json`, the request
//! as `telehook run` reads it, beside `NAME.expected.json`, either the outcome `telehook run`
//! prints or `{"refused": {"status": 401, "message": "..."}}` for a request the parser must
//! refuse. `settings.json` holds the integration settings the samples were made with. Each
//! sample runs in a fresh instance at its own `received_at` (or `--now`), and a failure prints
//! a diff of the expected and the actual outcome with the parser's log.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use telehook::{InvokeError, Parser, Settings, WebhookRequest};

/// One request and what the parser must make of it.
struct Sample {
    name: String,
    request: PathBuf,
    expected: PathBuf,
}

/// How one sample went.
pub struct Verdict {
    /// The sample's name (its file name without `.request.json`).
    pub name: String,
    /// `None` when the parser gave the expected outcome, else the diff and the log.
    pub failure: Option<String>,
}

/// The folder the samples are in: `DIR/samples` when there is one, else `DIR`.
pub fn folder(dir: &Path) -> PathBuf {
    let nested = dir.join("samples");
    if nested.is_dir() {
        nested
    } else {
        dir.to_owned()
    }
}

/// The integration settings of `samples/settings.json`, an object of strings; none without it.
pub fn settings(folder: &Path) -> Result<Settings> {
    let path = folder.join("settings.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Settings::new());
    };
    let values: BTreeMap<String, String> = serde_json::from_str(&text)
        .with_context(|| format!("{} must be an object of strings", path.display()))?;
    Ok(values.into_iter().collect())
}

/// Runs every sample in `folder` through `parser` with `settings`, in name order.
pub fn run_all(
    parser: &Parser,
    folder: &Path,
    settings: Settings,
    now: Option<SystemTime>,
) -> Result<Vec<Verdict>> {
    let samples = find(folder)?;
    if samples.is_empty() {
        bail!("{} has no samples (NAME.request.json)", folder.display());
    }
    let settings = Arc::new(settings);
    samples
        .iter()
        .map(|sample| run_one(parser, sample, &settings, now))
        .collect()
}

fn find(folder: &Path) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("cannot read {}", folder.display()))?
    {
        let request = entry?.path();
        let Some(name) = request
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".request.json"))
        else {
            continue;
        };
        let expected = folder.join(format!("{name}.expected.json"));
        if !expected.exists() {
            bail!("{} has no {}", request.display(), expected.display());
        }
        samples.push(Sample {
            name: name.to_owned(),
            request,
            expected,
        });
    }
    samples.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(samples)
}

fn run_one(
    parser: &Parser,
    sample: &Sample,
    settings: &Arc<Settings>,
    now: Option<SystemTime>,
) -> Result<Verdict> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut request = WebhookRequest::from_json(&read(&sample.request)?)
        .with_context(|| format!("in {}", sample.request.display()))?;
    if let Some(now) = now {
        request = request.received_at(now);
    }
    let expected: Value = serde_json::from_str(&read(&sample.expected)?)
        .with_context(|| format!("{} is not JSON", sample.expected.display()))?;
    let invocation = parser.invoke(&request, Arc::clone(settings));
    let actual = match &invocation.result {
        Ok(outcome) => serde_json::to_value(outcome)?,
        Err(InvokeError::Rejected { message, status }) => {
            json!({"refused": {"status": status, "message": message}})
        }
        Err(err) => json!({"failed": err.to_string()}),
    };
    let failure = (actual != expected).then(|| {
        let mut report = diff(&expected, &actual);
        for line in &invocation.log.lines {
            let _ = writeln!(report, "  parser {:?}: {}", line.level, line.message);
        }
        report
    });
    Ok(Verdict {
        name: sample.name.clone(),
        failure,
    })
}

/// A unified diff of the two outcomes as pretty JSON, expected first.
fn diff(expected: &Value, actual: &Value) -> String {
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    let (expected, actual) = (pretty(expected), pretty(actual));
    similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// The verdicts as a table a person reads at a glance, the diffs of the failures after it,
/// and a last line that counts them.
pub fn report(verdicts: &[Verdict]) -> String {
    let width = verdicts
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!("{:width$}  result\n", "sample");
    for verdict in verdicts {
        let result = if verdict.failure.is_some() {
            "FAIL"
        } else {
            "pass"
        };
        let _ = writeln!(out, "{:width$}  {result}", verdict.name);
    }
    for verdict in verdicts {
        if let Some(failure) = &verdict.failure {
            let _ = write!(out, "\n{}:\n{failure}", verdict.name);
        }
    }
    let failed = verdicts.iter().filter(|v| v.failure.is_some()).count();
    let _ = writeln!(out, "\n{} passed, {failed} failed", verdicts.len() - failed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_tables_every_sample_and_diffs_the_failures() {
        let verdicts = [
            Verdict {
                name: "notify-start".into(),
                failure: None,
            },
            Verdict {
                name: "end".into(),
                failure: Some(diff(&json!({"a": 1}), &json!({"a": 2}))),
            },
        ];
        let report = report(&verdicts);
        assert!(
            report.starts_with("sample        result\nnotify-start  pass\nend           FAIL\n")
        );
        assert!(report.contains("-  \"a\": 1\n+  \"a\": 2\n"), "{report}");
        assert!(report.ends_with("1 passed, 1 failed\n"));
    }
}
