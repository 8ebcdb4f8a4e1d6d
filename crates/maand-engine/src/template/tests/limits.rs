//! The bounds of a rendering (issue 14): a template bomb stops with an error naming the template
//! and the line it was at — by the time limit (lexing, parsing or execution), the output size
//! limit, or the source size limit — and well within the time limit's reach.

use super::{context, MapData};
use crate::template::{render_within, Limits, DEFAULT_TIME_LIMIT, MAX_OUTPUT_BYTES};
use std::time::{Duration, Instant};

/// Renders `source` under `limits`: the error and how long it took.
fn stopped(source: &str, limits: Limits) -> (String, Duration) {
    let started = Instant::now();
    match render_within("bomb.tpl", source, &context(), &MapData::new(), limits) {
        Ok(out) => panic!("the bomb did not stop: it rendered {} bytes", out.len()),
        Err(e) => (e.to_string(), started.elapsed()),
    }
}

fn one_second() -> Limits {
    Limits { time: Duration::from_secs(1), ..Limits::default() }
}

/// Stopped by the 1 s limit: the message names the template, and it stopped in time.
fn assert_timed_out(source: &str, start_of_message: &str) {
    let (error, elapsed) = stopped(source, one_second());
    assert!(error.starts_with(start_of_message), "{error}");
    assert!(
        error.ends_with("stopped after 1 s, the time limit of a template (template_timeout_seconds in maand.conf)"),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn the_defaults_are_ten_seconds_and_64_mib() {
    assert_eq!(Limits::default(), Limits { time: Duration::from_secs(10), max_output_bytes: 64 << 20 });
    assert_eq!((DEFAULT_TIME_LIMIT, MAX_OUTPUT_BYTES), (Duration::from_secs(10), 64 << 20));
}

#[test]
fn a_long_range_stops_at_the_time_limit() {
    assert_timed_out(
        "x\n{{ range 100000000 }}{{ end }}",
        "execute template bomb.tpl: line 2: {{range 100000000}}{{end}}: ",
    );
}

#[test]
fn nested_ranges_stop_at_the_time_limit() {
    assert_timed_out(
        "{{ range 100000 }}{{ range 100000 }}{{ $.Job }}{{ end }}{{ end }}",
        "execute template bomb.tpl: line 1: ",
    );
}

#[test]
fn template_calls_multiplying_stop_at_the_time_limit() {
    let mut source = String::from("{{ define \"t0\" }}x{{ end }}");
    for i in 1..40 {
        source.push_str(&format!(
            "{{{{ define \"t{i}\" }}}}{{{{ template \"t{}\" }}}}{{{{ template \"t{}\" }}}}{{{{ end }}}}",
            i - 1,
            i - 1
        ));
    }
    source.push_str("{{ template \"t39\" }}");
    let (error, elapsed) = stopped(&source, Limits { time: Duration::from_secs(1), max_output_bytes: usize::MAX });
    assert!(error.contains("stopped after 1 s, the time limit of a template"), "{error}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn parsing_a_huge_template_stops_at_the_time_limit() {
    let source = "{{ .Job }}{{ .WorkerIP }}\n".repeat(600_000);
    let limits = Limits { time: Duration::from_millis(100), ..Limits::default() };
    let (error, elapsed) = stopped(&source, limits);
    assert!(error.starts_with("parse template bomb.tpl: line "), "{error}");
    assert!(
        error.ends_with("stopped after 0.1 s, the time limit of a template (template_timeout_seconds in maand.conf)")
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn output_and_built_values_are_bounded() {
    let small = Limits { time: Duration::from_secs(10), max_output_bytes: 1 << 20 };
    let (error, _) = stopped("{{ range 100000000 }}xxxxxxxxxx{{ end }}", small);
    assert_eq!(
        error,
        "execute template bomb.tpl: line 1: xxxxxxxxxx: the output exceeds 1.0 MiB, the size limit of a rendered template"
    );
    let (error, _) = stopped(
        "{{ $x := \"0123456789abcdef\" }}{{ range 100 }}{{ $x = printf \"%s%s\" $x $x }}{{ end }}{{ len $x }}",
        small,
    );
    assert_eq!(
        error,
        "execute template bomb.tpl: line 1: printf \"%s%s\" $x $x: the output exceeds 1.0 MiB, the size limit of a \
         rendered template"
    );
    let (error, _) = stopped("{{ $s := printf \"%900000s\" \"\" }}{{ split $s \"\" }}", small);
    assert!(error.contains("split $s \"\": the output exceeds 1.0 MiB"), "{error}");
}

#[test]
fn a_source_over_16_mib_is_refused_at_once() {
    let (error, elapsed) = stopped(&"a".repeat(20_000_000), Limits::default());
    assert_eq!(error, "template bomb.tpl: the template is 19.1 MiB; a template may be at most 16.0 MiB");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[test]
fn ordinary_templates_render_as_before() {
    let out =
        render_within("ok.tpl", "{{ range 3 }}{{ . }}{{ end }} {{ .Job }}", &context(), &MapData::new(), one_second());
    assert_eq!(out.unwrap(), "012 api");
}
