//! Go text/template rendering for job `.tpl` files (spec/features.md §7).
//!
//! Our own engine, a port of Go's `text/template` (lexer, parser, executor, `fmt` printing) so
//! operator templates render byte for byte as under the Go maand: trim markers, comments,
//! pipelines, `if/else if/else`, `range` (with `$i, $v :=`, dot rebinding, `else`, `break`,
//! `continue`), `with`, `define`/`template`/`block`, variable declaration and re-assignment,
//! short-circuit `and`/`or`, Go truthiness and printing, the Go builtins and the maand functions.
//! Differential tests against a Go reference live in `tests/template_golden.rs`.

mod ast;
mod builtins;
mod context;
mod data;
mod exec;
mod float_format;
mod functions;
mod go_fmt;
mod go_strconv;
mod lexer;
mod limits;
mod maand_funcs;
mod number;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use maand_core::{Error, Result};

pub use context::TemplateContext;
pub use data::TemplateData;
pub use limits::{Limits, DEFAULT_TIME_LIMIT, MAX_OUTPUT_BYTES, MAX_SOURCE_BYTES};

/// Renders template `name` (its file name, for messages) from `source` for one allocation, under
/// the default [`Limits`].
pub fn render(name: &str, source: &str, ctx: &TemplateContext, data: &dyn TemplateData) -> Result<String> {
    render_within(name, source, ctx, data, Limits::default())
}

/// Renders template `name` from `source` for one allocation, under `limits` (time from the start
/// of this call, output size).
///
/// Errors (kind `Message`): `template <name>: <reason>` for a source over
/// [`MAX_SOURCE_BYTES`], `parse template <name>: line <n>: <reason>` and
/// `execute template <name>: line <n>: <action>: <reason>` (also when a limit stopped it there).
pub fn render_within(
    name: &str,
    source: &str,
    ctx: &TemplateContext,
    data: &dyn TemplateData,
    limits: Limits,
) -> Result<String> {
    limits::check_source(source).map_err(|e| Error::msg(format!("template {name}: {e}")))?;
    let budget = limits::Budget::start(limits);
    let mut funcs = functions::FuncTable::default();
    builtins::register_builtins(&mut funcs);
    maand_funcs::register_maand_functions(&mut funcs, ctx, data);
    let trees = parser::parse(name, source, &|f| funcs.contains(f), &budget)
        .map_err(|e| Error::msg(format!("parse template {name}: line {}: {}", e.line, e.message)))?;
    exec::execute(&trees, name, &funcs, ctx.to_value(), &budget).map_err(|e| {
        let line = 1 + source.get(..e.pos).unwrap_or(source).matches('\n').count();
        match e.context.is_empty() {
            true => Error::msg(format!("execute template {name}: {}", e.message)),
            false => {
                Error::msg(format!("execute template {name}: line {line}: {}: {}", shorten(&e.context), e.message))
            }
        }
    })
}

/// The failing action as shown in messages: Go prints the whole node, which for a block can be
/// the rest of the file.
fn shorten(context: &str) -> String {
    const MAX_CHARS: usize = 80;
    match context.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &context[..cut]),
        None => context.to_string(),
    }
}
