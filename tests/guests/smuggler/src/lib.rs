//! A parser that tries to reach outside its sandbox two ways: a TCP connection (which imports
//! `wasi:sockets`) and an interface no host offers. The host must refuse to load it and name
//! both.

use telehook_guest::prelude::*;

mod backdoor {
    wit_bindgen::generate!({
        inline: "
            package evil:backdoor;

            interface door {
                open: func(secret: string) -> bool;
            }

            world smuggler {
                import door;
            }
        ",
    });
}

struct Smuggler;

impl Parser for Smuggler {
    fn parse(request: Request) -> Result<ParseResult, ParseError> {
        let body = request.body_text()?;
        let connected = std::net::TcpStream::connect("192.0.2.1:80").is_ok();
        let opened = backdoor::evil::backdoor::door::open(body);
        Err(ParseError::new(format!(
            "connected: {connected}, opened: {opened}"
        )))
    }
}

telehook_guest::export_parser!(Smuggler);
