//! Compiles every guest crate (`catalog/*`, `examples/*` and `tests/guests/*`) to a WebAssembly
//! component and generates a constant with the path of each, so that tests run what the sources
//! say today, and a table of the parsers (the catalog's and the examples') with their folders.
//!
//! A guest is built for `wasm32-unknown-unknown` and made a component here (`wit-component`),
//! the way the SDK recommends: such a parser imports nothing but the contract. A guest that
//! needs WASI to do what it tests (printing, a file, a socket) names its targets in its
//! `Cargo.toml`, under `[package.metadata.telehook] targets`; the first is its main build,
//! named after the crate (`GENERIC_JSON`), the others get the target's suffix
//! (`GENERIC_JSON_WASIP2`).
//!
//! The guests are built by a nested `cargo build --profile guest`, one per target, into
//! `target/guests`, a target directory of their own, so that the nested build does not wait on
//! the lock of the build that runs this script. The main build of every guest ends up in
//! `target/guests/components`, the others in `target/guests/components/TARGET`.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "guest";
const GUEST_DIRS: &[&str] = &["catalog", "examples", "tests/guests"];
/// The folders whose guests are parsers a tenant uses, each with its samples, rather than
/// guests made to test the host.
const PARSER_DIRS: &[&str] = &["catalog", "examples"];

/// A guest crate and the targets it is built for, its main one first.
struct Guest {
    name: String,
    targets: Vec<String>,
    /// Its folder.
    dir: PathBuf,
    /// Whether it is a parser of the catalog or the examples (see [`PARSER_DIRS`]).
    is_parser: bool,
    /// The manifest of a guest that is a workspace of its own (one that cannot be built for
    /// the host, so stays out of the host's workspace); `None` for a member of ours.
    own_workspace: Option<PathBuf>,
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().expect("the workspace root exists");
    let target_dir = workspace.join("target/guests");

    let mut guests = Vec::new();
    for dir_name in GUEST_DIRS {
        let dir = workspace.join(dir_name);
        println!("cargo:rerun-if-changed={}", dir.display());
        guests.extend(guests_in(&dir, PARSER_DIRS.contains(dir_name)));
    }
    for input in [
        "guest-sdk",
        "crates/outcome",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }

    let mut by_target: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for guest in &guests {
        for target in &guest.targets {
            match &guest.own_workspace {
                Some(manifest) => build(&workspace, &target_dir, target, Crates::Own(manifest)),
                None => by_target.entry(target).or_default().push(&guest.name),
            }
        }
    }
    for (target, names) in &by_target {
        build(&workspace, &target_dir, target, Crates::Members(names));
    }

    let components = target_dir.join("components");
    let mut code = String::new();
    let mut table = String::from(
        "/// Every guest's main build, by crate name.\npub const GUESTS: &[(&str, &str)] = &[\n",
    );
    for guest in &guests {
        let file = format!("{}.wasm", guest.name.replace('-', "_"));
        let constant = guest.name.replace('-', "_").to_uppercase();
        for (index, target) in guest.targets.iter().enumerate() {
            let built = target_dir.join(target).join(PROFILE).join(&file);
            assert!(built.exists(), "{} was not built", built.display());
            // Main builds are gathered in one folder, which `cargo xtask` uses too; the others
            // go in a folder per target beside it.
            let (name, folder) = if index == 0 {
                writeln!(table, "    ({:?}, {constant}),", guest.name)
                    .expect("writing to a String");
                (constant.clone(), components.clone())
            } else {
                (
                    format!("{constant}_{}", target_suffix(target)),
                    components.join(target),
                )
            };
            fs::create_dir_all(&folder).expect("the target directory is writable");
            let path = folder.join(&file);
            if target == DEFAULT_TARGET {
                componentize(&built, &path);
                writeln!(
                    code,
                    "/// The `{}` core module, before it was made a component.\npub const {name}_MODULE: &str = {:?};",
                    guest.name,
                    built.display()
                )
                .expect("writing to a String");
            } else {
                fs::copy(&built, &path).expect("the target directory is writable");
            }
            writeln!(
                code,
                "/// The `{}` component, built from source for `{target}`.\npub const {name}: &str = {:?};",
                guest.name,
                path.display()
            )
            .expect("writing to a String");
        }
    }
    code.push_str(&table);
    code.push_str("];\n");
    code.push_str(
        "/// Every parser of the catalog and the examples, by crate name, with its folder.\npub const PARSERS: &[(&str, &str)] = &[\n",
    );
    for guest in guests.iter().filter(|guest| guest.is_parser) {
        writeln!(code, "    ({:?}, {:?}),", guest.name, guest.dir.display())
            .expect("writing to a String");
    }
    code.push_str("];\n");
    let generated = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(generated.join("guests.rs"), code).expect("OUT_DIR is writable");
}

/// Which guest crates one nested build makes.
enum Crates<'a> {
    /// These members of the host's workspace.
    Members(&'a [&'a str]),
    /// The guest whose manifest is its own workspace.
    Own(&'a Path),
}

/// Builds guest crates for one target. The nested cargo runs in the workspace's root either
/// way, so that `.cargo/config.toml` (the guests' stack size) applies to every guest.
fn build(workspace: &Path, target_dir: &Path, target: &str, crates: Crates<'_>) {
    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["build", "--quiet", "--target", target, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(target_dir);
    match crates {
        Crates::Members(names) => {
            for name in names {
                cargo.args(["--package", name]);
            }
        }
        Crates::Own(manifest) => {
            cargo.arg("--manifest-path").arg(manifest);
        }
    }
    // The outer build's flags and wrappers (coverage, clippy) are for the host, not the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("cargo runs");
    assert!(
        status.success(),
        "building the guest components for {target} failed; is the target installed? \
         (`rustup target add {target}`)"
    );
}

/// Wraps a core module built with the SDK into a component: the contract's types travel in the
/// module's `component-type` custom section, which `wit-bindgen` put there.
fn componentize(module: &Path, component: &Path) {
    let bytes = fs::read(module).expect("the guest module was just built");
    let encoded = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|err| panic!("making {} a component: {err:#}", module.display()));
    fs::write(component, encoded).expect("the target directory is writable");
}

/// `WASIP2` for `wasm32-wasip2`: the part of a target that tells its builds apart.
fn target_suffix(target: &str) -> String {
    target
        .trim_start_matches("wasm32-")
        .split('-')
        .next()
        .unwrap_or(target)
        .to_uppercase()
}

/// The guest crates directly under `dir` (each folder is named after its crate), with the
/// targets their manifests ask for.
fn guests_in(dir: &Path, is_parser: bool) -> Vec<Guest> {
    let mut guests: Vec<Guest> = fs::read_dir(dir)
        .expect("the guest folder exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| {
            let manifest = read_manifest(&entry.path().join("Cargo.toml"));
            Guest {
                name: entry.file_name().to_string_lossy().into_owned(),
                dir: entry.path(),
                is_parser,
                targets: targets_of(&manifest),
                own_workspace: manifest
                    .contains_key("workspace")
                    .then(|| entry.path().join("Cargo.toml")),
            }
        })
        .collect();
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    guests
}

/// A guest's `Cargo.toml`, parsed.
fn read_manifest(path: &Path) -> toml::Table {
    let text = fs::read_to_string(path).expect("the manifest is readable");
    text.parse()
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `package.metadata.telehook.targets` of a manifest, or the default target.
fn targets_of(manifest: &toml::Table) -> Vec<String> {
    let targets = manifest
        .get("package")
        .and_then(|package| package.get("metadata"))
        .and_then(|metadata| metadata.get("telehook"))
        .and_then(|telehook| telehook.get("targets"))
        .and_then(toml::Value::as_array);
    match targets {
        Some(targets) => targets
            .iter()
            .map(|target| target.as_str().expect("targets are strings").to_owned())
            .collect(),
        None => vec![DEFAULT_TARGET.to_owned()],
    }
}
