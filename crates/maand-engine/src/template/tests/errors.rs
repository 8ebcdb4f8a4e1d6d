//! Error reporting: message format with the template name and line, limits instead of stack
//! overflows, and no secret values in messages.

use super::{fails, run, MapData};

#[test]
fn parse_errors_name_the_template_and_line() {
    assert_eq!(fails("ok\n{{ if .Job }}\nnever closed\n"), "parse template t.tpl: line 4: unexpected EOF");
    assert_eq!(fails("{{ \"abc }}"), "parse template t.tpl: line 1: unterminated quoted string");
    assert_eq!(fails("a\n\n{{ end }}"), "parse template t.tpl: line 3: unexpected {{end}}");
    assert_eq!(fails("{{ break }}"), "parse template t.tpl: line 1: {{break}} outside {{range}}");
}

#[test]
fn execution_errors_name_the_line_and_action() {
    assert_eq!(
        fails("a\nb\n{{ .Nope }}"),
        "execute template t.tpl: line 3: .Nope: can't evaluate field Nope in type deploy.AllocationData"
    );
    assert_eq!(
        fails("{{ template \"x\" }}"),
        "execute template t.tpl: line 1: {{template \"x\"}}: template \"x\" not defined"
    );
    assert_eq!(
        fails("{{ eq 1 \"1\" }}"),
        "execute template t.tpl: line 1: eq 1 \"1\": incompatible types for comparison"
    );
    assert_eq!(
        fails("{{ index .Labels 5 }}"),
        "execute template t.tpl: line 1: index .Labels 5: index out of range: 5"
    );
}

#[test]
fn long_contexts_are_shortened() {
    let src = format!("{}{{{{ .Nope }}}}{}", "{{ if true }}".repeat(10), "{{ end }}".repeat(10));
    let err = fails(&src);
    assert!(err.contains("can't evaluate field Nope"), "{err}");
    assert!(err.len() < 200, "context should be shortened: {err}");
}

#[test]
fn recursion_is_bounded() {
    let err = fails("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" 1 }}");
    assert!(err.ends_with("exceeded maximum template depth (500)"), "{err}");
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(300), ")".repeat(300));
    assert!(fails(&deep).contains("nesting exceeds 200 levels"));
}

#[test]
fn secret_values_stay_out_of_error_messages() {
    let data = MapData::new().secret("pw", "hunter2");
    for src in [
        "{{ int (getSecret \"pw\") }}",
        "{{ range getSecret \"pw\" }}{{ end }}",
        "{{ eq (getSecret \"pw\") 1 }}",
        "{{ (getSecret \"pw\").Field }}",
    ] {
        let err = run(src, &data).expect_err(src);
        assert!(!err.contains("hunter2"), "{src}: {err}");
    }
}
