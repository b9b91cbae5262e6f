//! A valid component of another world: it exports `run` instead of the parser contract.

wit_bindgen::generate!({
    inline: "
        package test:other;

        world other {
            export run: func() -> string;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn run() -> String {
        "not a parser".to_owned()
    }
}

export!(Other);
