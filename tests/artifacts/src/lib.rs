//! Paths of the guest components built from source for telehook's tests: one constant per
//! crate in `examples/` and `tests/guests/`, named after the crate (`GENERIC_JSON`, `HOSTILE`).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component built from the guest crate `name`.
///
/// # Panics
/// When no guest crate has that name: a test naming a guest that does not exist is a bug.
pub fn component(name: &str) -> &'static str {
    GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest crate named `{name}`"))
}

/// The folder of an example crate, where its `samples/` live.
pub fn example_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}
