//! The maand template functions (spec/features.md §7.2).

use super::{context, run, MapData};
use crate::template::{render, TemplateData};

fn kv() -> MapData {
    MapData::new()
        .with("maand/bucket", "api_http_port", "8080")
        .with("maand/bucket", "empty", "")
        .with("maand/worker", "api_workers", "10.0.0.1,10.0.0.2")
        .with("maand/job/api", "memory", " 2048 ")
        .with("maand/job/api", "bad", "2048.0")
        .allow("empty/ns")
        .secret("db_password", "hunter2")
}

fn render_ok(src: &str) -> String {
    run(src, &kv()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn render_err(src: &str) -> String {
    run(src, &kv()).expect_err(src)
}

#[test]
fn get_reads_a_key() {
    assert_eq!(render_ok("{{ get \"maand/bucket\" \"api_http_port\" }}"), "8080");
    assert_eq!(render_ok("{{ get (printf \"maand/%s\" \"worker\") \"api_workers\" }}"), "10.0.0.1,10.0.0.2");
    assert_eq!(render_ok("[{{ get \"maand/bucket\" \"empty\" }}]"), "[]");
}

#[test]
fn get_of_a_missing_key_names_namespace_and_key() {
    assert_eq!(
        render_err("x\n{{ get \"maand/bucket\" \"nope\" }}"),
        "execute template t.tpl: line 2: get \"maand/bucket\" \"nope\": key \"nope\" not found in namespace \"maand/bucket\""
    );
}

#[test]
fn get_of_a_disallowed_namespace_reports_the_data_error() {
    let mut data = MapData::new().allow("maand/bucket");
    data.job = "vault".into();
    let mut ctx = context();
    ctx.job = "vault".into();
    let src = "storage \"raft\" {\n  path = \"/vault\"\n  key = {{ get \"secrets/job/x\" \"k\" }}\n}";
    let err = render("config.hcl.tpl", src, &ctx, &data).expect_err("disallowed namespace");
    assert_eq!(err.kind, maand_core::ErrorKind::Message);
    assert_eq!(
        err.to_string(),
        "execute template config.hcl.tpl: line 3: get \"secrets/job/x\" \"k\": secrets/job/x namespace is not available for job vault"
    );
}

#[test]
fn get_optional_is_empty_for_missing_keys_but_checks_the_namespace() {
    assert_eq!(
        render_ok("[{{ getOptional \"maand/bucket\" \"nope\" }}][{{ getOptional \"empty/ns\" \"x\" }}]"),
        "[][]"
    );
    assert_eq!(render_ok("{{ getOptional \"maand/bucket\" \"api_http_port\" }}"), "8080");
    assert!(render_err("{{ getOptional \"secrets/job/other\" \"x\" }}")
        .ends_with("secrets/job/other namespace is not available for job api"));
}

#[test]
fn get_secret_takes_one_argument() {
    assert_eq!(render_ok("{{ getSecret \"db_password\" }}"), "hunter2");
    assert!(render_err("{{ getSecret \"secrets/job/api\" \"db_password\" }}")
        .contains("wrong number of args for getSecret: want 1 got 2"));
    assert!(
        render_err("{{ getSecret \"nope\" }}").ends_with("secret \"nope\" not found in namespace \"secrets/job/api\"")
    );
}

#[test]
fn keys_lists_sorted_live_keys() {
    assert_eq!(render_ok("{{ keys \"maand/bucket\" }} {{ len (keys \"empty/ns\") }}"), "[api_http_port empty] 0");
    assert!(render_err("{{ keys \"vars/job/other\" }}").contains("not available"));
}

#[test]
fn split_follows_go_strings_split() {
    assert_eq!(render_ok("{{ split \"\" \",\" }}|{{ len (split \"\" \",\") }}|{{ split \"a,b,\" \",\" }}|{{ len (split \"a,b,\" \",\") }}"), "[]|1|[a b ]|3");
    assert_eq!(render_ok("{{ split \"héllo\" \"\" }} {{ len (split \"\" \"\") }}"), "[h é l l o] 0");
}

#[test]
fn trim_join_upper_lower() {
    assert_eq!(render_ok("[{{ trim \" \\t x y \\n\" }}] {{ join (split \"a b c\" \" \") \"-\" }} {{ upper \"abc é\" }} {{ lower \"ÀBC\" }}"), "[x y] a-b-c ABC É àbc");
}

#[test]
fn integer_arithmetic() {
    assert_eq!(
        render_ok(
            "{{ add 2 3 }} {{ sub 2 3 }} {{ mul -4 5 }} {{ div 7 2 }} {{ div -7 2 }} {{ min 3 -1 }} {{ max 3 -1 }}"
        ),
        "5 -1 -20 3 -3 -1 3"
    );
    assert_eq!(render_ok("{{ add 9223372036854775807 1 }}"), "-9223372036854775808");
    assert!(render_err("{{ div 1 0 }}").ends_with("div 1 0: integer divide by zero"));
    assert!(render_err("{{ add \"1\" 2 }}").contains("expected integer; found \"1\""));
}

#[test]
fn int_converts_strings_and_passes_ints() {
    assert_eq!(render_ok("{{ int (get \"maand/job/api\" \"memory\") }} {{ int 7 }} {{ int \"-3\" }} {{ div (int (get \"maand/job/api\" \"memory\")) 2 }}"), "2048 7 -3 1024");
    assert!(render_err("{{ int (get \"maand/job/api\" \"bad\") }}").contains("not a decimal integer"));
    assert!(render_err("{{ int true }}").contains("cannot convert value of type bool"));
}

#[test]
fn scrape_configs_and_rule_files_come_from_the_data() {
    assert_eq!(
        render_ok("{{ scrapeConfigs }}{{ ruleFiles }}"),
        "  - job_name: api\nrule_files:\n  - rules/maand/certs.yaml\n"
    );
}

/// Data whose Prometheus fragments cannot be built.
struct BrokenPrometheus;

impl TemplateData for BrokenPrometheus {
    fn get(&self, _: &str, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn keys(&self, _: &str) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    fn get_secret(&self, _: &str) -> Result<Option<String>, String> {
        Ok(None)
    }
    fn scrape_configs(&self) -> Result<String, String> {
        Err("maand/prometheus namespace is not available for job api".to_string())
    }
    fn rule_files(&self) -> Result<String, String> {
        Err("no rules".to_string())
    }
}

#[test]
fn function_errors_abort_rendering() {
    let err = render("p.yml.tpl", "a\n{{ scrapeConfigs }}", &context(), &BrokenPrometheus).unwrap_err().to_string();
    assert_eq!(
        err,
        "execute template p.yml.tpl: line 2: scrapeConfigs: maand/prometheus namespace is not available for job api"
    );
}
