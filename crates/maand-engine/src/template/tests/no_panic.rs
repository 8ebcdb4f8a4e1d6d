//! Rendering never panics, whatever the template text.

use proptest::prelude::*;

use super::{run, MapData};

/// Fragments that build (mostly broken) template syntax.
const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "/*",
    "*/",
    " ",
    "\n",
    "if ",
    "else ",
    "end",
    "range ",
    "with ",
    "define ",
    "template ",
    "block ",
    "$x",
    "$",
    ":=",
    "=",
    ",",
    "|",
    "(",
    ")",
    ".",
    ".Job",
    ".Labels",
    ".WorkerData",
    "\"a\"",
    "`r`",
    "'c'",
    "1",
    "-1",
    "1.5",
    "0x1F",
    "nil",
    "true",
    "break",
    "continue",
    "printf \"%d%s%v\" ",
    "index ",
    "slice ",
    "len ",
    "eq ",
    "and ",
    "or ",
    "not ",
    "get \"ns\" \"k\" ",
    "split \"a,b\" \",\" ",
    "int ",
    "add ",
    "div ",
    "html ",
    "js ",
    "call ",
    "é",
    "\\",
];

fn template_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.concat()),
        any::<String>(),
        "[{}$. a-z0-9\"|()-]{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn render_never_panics(source in template_text()) {
        let data = MapData::new().with("ns", "k", "v");
        // Ok or Err are both fine (a panic fails the property); errors keep their format.
        if let Err(message) = run(&source, &data) {
            prop_assert!(
                message.starts_with("parse template t.tpl: ") || message.starts_with("execute template t.tpl: "),
                "unexpected error format: {}", message
            );
        }
    }
}
