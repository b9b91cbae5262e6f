//! Compiles every guest crate (`examples/*` and `tests/guests/*`) to a WebAssembly component and
//! generates a constant with the path of each, so that tests run what the sources say today.
//!
//! The guests are built by a nested `cargo build --target wasm32-wasip2 --profile guest` into
//! `target/guests`, a target directory of their own, so that the nested build does not wait
//! on the lock of the build that runs this script.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";
const GUEST_DIRS: &[&str] = &["examples", "tests/guests"];

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().expect("the workspace root exists");
    let target_dir = workspace.join("target/guests");

    let mut guests = Vec::new();
    for dir in GUEST_DIRS {
        let dir = workspace.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        guests.extend(crates_in(&dir));
    }
    for input in [
        "guest-sdk",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }

    let mut cargo = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .current_dir(&workspace)
        .args(["build", "--quiet", "--target", TARGET, "--profile", PROFILE])
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in &guests {
        cargo.args(["--package", guest]);
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
        "building the guest components failed; is the target installed? \
         (`rustup target add {TARGET}`)"
    );

    let out_dir = target_dir.join(TARGET).join(PROFILE);
    let mut code = String::new();
    let mut table =
        String::from("/// Every guest, by crate name.\npub const GUESTS: &[(&str, &str)] = &[\n");
    for guest in &guests {
        let path = out_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        assert!(path.exists(), "{} was not built", path.display());
        let name = guest.replace('-', "_").to_uppercase();
        writeln!(
            code,
            "/// The `{guest}` component, built from source.\npub const {name}: &str = {:?};",
            path.display()
        )
        .expect("writing to a String");
        writeln!(table, "    ({guest:?}, {name}),").expect("writing to a String");
    }
    code.push_str(&table);
    code.push_str("];\n");
    let generated = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(generated.join("guests.rs"), code).expect("OUT_DIR is writable");
}

/// The package names of the crates directly under `dir` (each folder is named after its crate).
fn crates_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("the guest folder exists")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
