//! Paths of the guest components built from source for telehook's tests: one constant per
//! crate in `catalog/`, `examples/` and `tests/guests/`, named after the crate (`GENERIC_JSON`,
//! `HOSTILE`), and [`PARSERS`], the catalog's and the examples' parsers with their folders.

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

/// The folder of a parser of the catalog or the examples, where its `samples/` live.
///
/// # Panics
/// When no parser has that name.
pub fn parser_dir(name: &str) -> std::path::PathBuf {
    PARSERS
        .iter()
        .find(|(parser, _)| *parser == name)
        .map(|(_, dir)| std::path::PathBuf::from(dir))
        .unwrap_or_else(|| panic!("no parser crate named `{name}`"))
}
