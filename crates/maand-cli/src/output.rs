//! Printing: rounded box tables and JSON on stdout, messages respecting MAAND_QUIET/MAAND_TEST.

use comfy_table::{modifiers::UTF8_ROUND_CORNERS, presets::UTF8_FULL, ContentArrangement, Table as BoxTable};
use maand_engine::inspect::Table;

pub struct Printer {
    /// MAAND_QUIET=1 (or MAAND_TEST=1) suppresses tables and informational messages.
    pub quiet: bool,
}

impl Printer {
    pub fn from_env() -> Printer {
        let on = |k: &str| std::env::var(k).is_ok_and(|v| v == "1");
        Printer { quiet: on("MAAND_QUIET") }
    }

    pub fn message(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }
}

pub fn print_table(t: &Table) {
    let mut out = BoxTable::new();
    out.load_preset(UTF8_FULL).apply_modifier(UTF8_ROUND_CORNERS).set_content_arrangement(ContentArrangement::Disabled);
    out.set_header(t.columns.iter().map(|c| c.header));
    for row in &t.rows {
        out.add_row(row.iter().map(Table::cell_text));
    }
    println!("{out}");
}

pub fn print_json(v: &serde_json::Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot print JSON: {e}"),
    }
}
