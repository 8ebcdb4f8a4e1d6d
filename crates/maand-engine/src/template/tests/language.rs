//! One test per text/template language feature, with the output Go produces.

use super::{fails, ok, run, MapData};

#[test]
fn trim_markers_remove_adjacent_whitespace() {
    assert_eq!(ok("a  {{- \"b\" -}}  c"), "abc");
    assert_eq!(ok("x\n\t {{- \"y\" }} \n"), "xy \n");
    assert_eq!(ok("{{ \"y\" -}}\n\t  z"), "yz");
    // Without a space the minus belongs to a number.
    assert_eq!(ok("{{-3}}"), "-3");
}

#[test]
fn comments_print_nothing_and_can_trim() {
    assert_eq!(ok("a{{/* note */}}b"), "ab");
    assert_eq!(ok("a \n{{- /* note */ -}}\n b"), "ab");
    assert_eq!(ok("{{/* multi\nline */}}{{ .Job }}"), "api");
}

#[test]
fn pipelines_pass_the_value_as_last_argument() {
    assert_eq!(ok("{{ \"world\" | printf \"hello %s\" }}"), "hello world");
    assert_eq!(ok("{{ .Job | upper | printf \"%q\" }}"), "\"API\"");
    assert_eq!(ok("{{ 3 | add 4 | mul 2 }}"), "14");
}

#[test]
fn parenthesised_calls_nest() {
    assert_eq!(ok("{{ add (add 1 2) (mul 3 (sub 10 4)) }}"), "21");
    assert_eq!(ok("{{ printf \"%s-%d\" (upper .Job) (len .Labels) }}"), "API-2");
}

#[test]
fn if_else_if_else_chains() {
    let src = "{{ if eq .Job \"a\" }}a{{ else if eq .Job \"api\" }}second{{ else }}none{{ end }}";
    assert_eq!(ok(src), "second");
    assert_eq!(ok("{{ if eq .Job \"a\" }}a{{ else }}else{{ end }}"), "else");
}

#[test]
fn range_with_index_and_value() {
    assert_eq!(ok("{{ range $i, $v := split \"a,b,c\" \",\" }}{{ $i }}={{ $v }};{{ end }}"), "0=a;1=b;2=c;");
}

#[test]
fn range_with_value_variable() {
    assert_eq!(ok("{{ range $v := .Labels }}[{{ $v }}]{{ end }}"), "[api][worker]");
}

#[test]
fn range_rebinds_dot_and_runs_else_when_empty() {
    assert_eq!(ok("{{ range .Labels }}<{{ . }}>{{ end }}"), "<api><worker>");
    assert_eq!(ok("{{ range slice .Labels 2 }}x{{ else }}empty{{ end }}"), "empty");
    // split "" "," is [""], one iteration.
    assert_eq!(ok("{{ range split \"\" \",\" }}[{{ . }}]{{ else }}empty{{ end }}"), "[]");
}

#[test]
fn range_break_and_continue() {
    assert_eq!(ok("{{ range split \"a,b,c,d\" \",\" }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ if eq . \"d\" }}{{ break }}{{ end }}{{ . }}{{ end }}"), "ac");
}

#[test]
fn with_sets_dot_and_has_else() {
    assert_eq!(ok("{{ with .WorkerIP }}ip={{ . }}{{ end }}"), "ip=10.0.0.1");
    assert_eq!(ok("{{ with \"\" }}x{{ else }}empty, dot is {{ .Job }}{{ end }}"), "empty, dot is api");
    assert_eq!(ok("{{ with $p := \"8080\" }}{{ $p }}/{{ . }}{{ end }}"), "8080/8080");
}

#[test]
fn else_with_chains_like_go_1_23() {
    assert_eq!(ok("{{ with \"\" }}a{{ else with .Job }}b={{ . }}{{ else }}c{{ end }}"), "b=api");
}

#[test]
fn define_and_template_with_an_argument() {
    let src = "{{ define \"greet\" }}Hello {{ . }} from {{ $ }}{{ end }}{{ template \"greet\" .Job }}|{{ template \"greet\" 42 }}";
    assert_eq!(ok(src), "Hello api from api|Hello 42 from 42");
}

#[test]
fn template_without_argument_gets_no_value() {
    assert_eq!(ok("{{ define \"d\" }}[{{ . }}]{{ end }}{{ template \"d\" }}"), "[<no value>]");
}

#[test]
fn called_templates_do_not_see_caller_variables() {
    let err = fails("{{ define \"d\" }}{{ $x }}{{ end }}{{ $x := 1 }}{{ template \"d\" }}");
    assert!(err.starts_with("parse template t.tpl: line 1: undefined variable \"$x\""), "{err}");
}

#[test]
fn block_defines_and_executes_its_body() {
    assert_eq!(ok("{{ block \"b\" .Job }}<{{ . }}>{{ end }}|{{ template \"b\" \"again\" }}"), "<api>|<again>");
}

#[test]
fn variables_are_declared_assigned_and_scoped() {
    assert_eq!(ok("{{ $a := 1 }}{{ $a = add $a 1 }}{{ $a }}"), "2");
    assert_eq!(ok("{{ $a := 1 }}{{ if true }}{{ $a := 5 }}{{ $a }}{{ end }}{{ $a }}"), "51");
    assert_eq!(ok("{{ $a := 1 }}{{ if true }}{{ $a = 5 }}{{ end }}{{ $a }}"), "5");
}

#[test]
fn assignment_inside_range_is_visible_after_the_range() {
    let src = "{{ $found := false }}{{ range .Labels }}{{ if eq . \"worker\" }}{{ $found = true }}{{ end }}{{ end }}{{ $found }}";
    assert_eq!(ok(src), "true");
}

#[test]
fn range_assignment_form_sets_outer_variables() {
    // Go >= 1.22: `range $i, $v = …` assigns the declared outer variables.
    assert_eq!(ok("{{ $i := 9 }}{{ $v := \"\" }}{{ range $i, $v = .Labels }}{{ end }}{{ $i }} {{ $v }}"), "1 worker");
}

#[test]
fn range_over_an_integer_counts_like_go_1_22() {
    assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(ok("{{ range 0 }}x{{ else }}none{{ end }}"), "none");
    assert!(fails("{{ range $i, $v := 3 }}{{ end }}").contains("more than one variable"));
}

#[test]
fn root_variable_is_the_context() {
    assert_eq!(ok("{{ range .Labels }}{{ $.Job }}:{{ . }} {{ end }}"), "api:api api:worker ");
}

#[test]
fn eq_compares_against_any_of_several() {
    assert_eq!(ok("{{ eq .Job \"x\" \"y\" \"api\" }} {{ eq .Job \"x\" \"y\" }}"), "true false");
    assert_eq!(ok("{{ eq .UpdateSeq 3 }} {{ eq (index \"a\" 0) 97 }}"), "true true");
}

#[test]
fn ordered_comparisons() {
    assert_eq!(
        ok("{{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1 3 }}"),
        "true true true true false"
    );
}

#[test]
fn and_or_return_the_deciding_operand() {
    assert_eq!(ok("{{ and 1 2 3 }} {{ and 1 0 3 }} {{ or 0 \"\" \"x\" }} {{ or 0 \"\" }}"), "3 0 x ");
}

#[test]
fn and_or_short_circuit_like_go_1_18() {
    let data = MapData::new().allow("ns");
    // The `get` of a missing key would fail; it must not be evaluated.
    assert_eq!(run("{{ and false (get \"ns\" \"missing\") }}", &data).unwrap(), "false");
    assert_eq!(run("{{ or true (get \"ns\" \"missing\") }}", &data).unwrap(), "true");
    assert!(run("{{ and true (get \"ns\" \"missing\") }}", &data).is_err());
}

#[test]
fn not_len_index() {
    assert_eq!(ok("{{ not 0 }} {{ not .Labels }} {{ len \"héllo\" }} {{ len .Labels }} {{ index .Labels 1 }} {{ index \"abc\" 1 }}"), "true false 6 2 worker 98");
}

#[test]
fn print_family() {
    assert_eq!(
        ok("{{ print \"a\" 1 2 \"b\" }}|{{ println \"x\" 1 }}|{{ printf \"%05.1f %x %q\" 3.14159 255 \"q\" }}"),
        "a1 2b|x 1\n|003.1 ff \"q\""
    );
}

#[test]
fn slice_builtin() {
    assert_eq!(ok("{{ slice \"hello\" 1 3 }} {{ slice .Labels 1 }} {{ slice \"abc\" }}"), "el [worker] abc");
}

#[test]
fn html_js_urlquery_escape() {
    assert_eq!(ok("{{ html \"<a&'b'>\" }}"), "&lt;a&amp;&#39;b&#39;&gt;");
    assert_eq!(ok("{{ js \"it's <x>\" }}"), "it\\'s \\u003Cx\\u003E");
    assert_eq!(ok("{{ urlquery \"a b&c\" }}"), "a+b%26c");
}

#[test]
fn call_requires_a_function_value() {
    assert!(fails("{{ call .Job }}").contains("non-function of type string"));
}

#[test]
fn truthiness_follows_go() {
    let src = "{{ if \"\" }}T{{ else }}F{{ end }}{{ if 0 }}T{{ else }}F{{ end }}{{ if false }}T{{ else }}F{{ end }}\
               {{ if slice .Labels 2 }}T{{ else }}F{{ end }}{{ if \"0\" }}T{{ else }}F{{ end }}{{ if -1 }}T{{ else }}F{{ end }}{{ if . }}T{{ else }}F{{ end }}";
    assert_eq!(ok(src), "FFFFTTT");
}

#[test]
fn values_print_like_go() {
    assert_eq!(ok("{{ 42 }} {{ true }} {{ .Labels }} {{ split \"\" \",\" }} {{ 1.5 }} {{ 2.0 }} {{ 1e6 }} {{ 'a' }} {{ 0x1F }}"), "42 true [api worker] [] 1.5 2 1e+06 97 31");
    assert_eq!(ok("{{ and nil 1 }}"), "<no value>");
    assert_eq!(ok("{{ .WorkerData }}"), "{b1 worker-1 10.0.0.1 [api worker] 3}");
}

#[test]
fn context_fields_are_all_available() {
    let src = "{{ .AllocationID }} {{ .Job }} {{ .CurrentVersion }} {{ .NewVersion }} {{ .WorkerIP }} {{ .WorkerID }} {{ .Labels }} {{ .BucketPath }} {{ .JobPath }} {{ .BucketID }} {{ .UpdateSeq }}";
    assert_eq!(
        ok(src),
        "alloc-1 api 1.0.0 1.1.0 10.0.0.1 worker-1 [api worker] /opt/worker/b1 /opt/worker/b1/jobs/api b1 3"
    );
}

#[test]
fn missing_functions_are_parse_errors() {
    assert_eq!(fails("\n{{ nope 1 }}"), "parse template t.tpl: line 2: function \"nope\" not defined");
}

#[test]
fn deep_nesting_within_limits_renders() {
    let src = format!("{}x{}", "{{ if true }}".repeat(200), "{{ end }}".repeat(200));
    assert_eq!(ok(&src), "x");
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(199), ")".repeat(199));
    assert_eq!(ok(&parens), "1");
}
