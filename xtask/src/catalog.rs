//! `cargo xtask bench --catalog`: the invocation benchmark of every catalog parser (and the
//! signature checks in the sandbox), then the README's catalog table made from its figures, so that the
//! table and the benchmark cannot drift apart.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// One row of the table: a catalog parser, what it covers, its samples and its cost.
struct Row {
    name: String,
    covers: String,
    samples: usize,
    /// The sample the benchmark priced, and its median in microseconds.
    measured: Option<(String, f64)>,
}

/// The Markdown table of `catalog/`, with the medians criterion stored under
/// `target/criterion/parsers/`.
pub fn table(root: &Path) -> Result<String> {
    let mut rows = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("catalog"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|name| name.to_str())
            .context("catalog folders are named after their crates")?
            .to_owned();
        let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))?
            .parse()
            .with_context(|| format!("{}/Cargo.toml", dir.display()))?;
        let covers = manifest["package"]
            .get("description")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let samples = std::fs::read_dir(dir.join("samples"))?
            .filter_map(Result::ok)
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".request.json")
            })
            .count();
        let measured = measured(root, &name)?;
        rows.push(Row {
            name,
            covers,
            samples,
            measured,
        });
    }
    let mut table = String::from(
        "| parser | what it covers | samples | invocation (median) | priced on |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let (cost, sample) = row.measured.map_or_else(
            || ("not measured".to_owned(), String::new()),
            |(sample, us)| (format!("{us:.0} µs"), format!("`{sample}`")),
        );
        writeln!(
            table,
            "| [`{0}`](catalog/{0}) | {1} | {2} | {cost} | {sample} |",
            row.name,
            row.covers.replace('|', "\\|"),
            row.samples
        )?;
    }
    Ok(table)
}

/// The sample of the parser's benchmark (`parsers/NAME/SAMPLE`, stored as
/// `parsers/NAME_SAMPLE`) and criterion's median for it, in microseconds.
fn measured(root: &Path, name: &str) -> Result<Option<(String, f64)>> {
    let group = root.join("target/criterion/parsers");
    let Ok(entries) = std::fs::read_dir(&group) else {
        return Ok(None);
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(sample) = file_name.strip_prefix(&format!("{name}_")) else {
            continue;
        };
        let estimates = entry.path().join("new/estimates.json");
        let estimates: Value = serde_json::from_str(
            &std::fs::read_to_string(&estimates)
                .with_context(|| format!("reading {}", estimates.display()))?,
        )?;
        return Ok(estimates["median"]["point_estimate"]
            .as_f64()
            .map(|ns| (sample.to_owned(), ns / 1000.0)));
    }
    Ok(None)
}
