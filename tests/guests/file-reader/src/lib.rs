//! A parser that reads a file: it imports `wasi:filesystem`, which the host must refuse to load.

use telehook_guest::prelude::*;

struct FileReader;

impl Parser for FileReader {
    fn parse(_request: Request) -> Result<ParseResult, ParseError> {
        let secret = std::fs::read_to_string("/etc/passwd").map_err(|err| err.to_string())?;
        Err(ParseError::new(secret))
    }
}

telehook_guest::export_parser!(FileReader);
