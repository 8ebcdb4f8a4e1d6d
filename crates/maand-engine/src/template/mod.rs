//! Go text/template rendering for job `.tpl` files (spec/features.md §7).
