//! `restart_globs` patterns (spec §2.9, internals §7.3 pathmatch) and the changed-file set they are
//! matched against.
//!
//! Syntax: `*` any run of characters except `/`; `?` one character except `/`; `[a-z]`, `[^a-z]`
//! (or `[!a-z]`) a character class; `\c` the character `c`; `**` any run including `/`; `**/` zero
//! or more whole directories. A pattern matches a job-relative path when it matches the full path
//! or the path's basename (so a literal `app.conf` matches `conf/app.conf`). Our extensions, as in
//! gitignore: a leading `/` anchors the pattern to the full path only; a trailing `/` matches
//! everything below that directory (`conf/` = `conf/**`).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    AnyChar,
    Star,
    DoubleStar,
    /// `**/`: empty, or anything ending with `/`.
    DoubleStarSlash,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

struct Pattern {
    tokens: Vec<Token>,
    anchored: bool,
}

/// Check a pattern's syntax; the error says what is wrong.
pub fn validate_glob(pattern: &str) -> Result<(), String> {
    compile(pattern).map(|_| ())
}

/// Whether `pattern` matches the job-relative `path` (full path or basename). Invalid patterns
/// match nothing.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let Ok(compiled) = compile(pattern) else {
        return false;
    };
    let path = path.trim_start_matches("./").trim_start_matches('/');
    if matches_tokens(&compiled.tokens, path) {
        return true;
    }
    if compiled.anchored {
        return false;
    }
    match path.rsplit_once('/') {
        Some((_, base)) => matches_tokens(&compiled.tokens, base),
        None => false,
    }
}

/// Paths added, removed or modified between two file manifests (relative path → content hash),
/// sorted.
pub fn changed_paths(previous: &BTreeMap<String, String>, current: &BTreeMap<String, String>) -> Vec<String> {
    let mut changed: BTreeSet<&String> = BTreeSet::new();
    for (path, hash) in previous {
        if current.get(path) != Some(hash) {
            changed.insert(path);
        }
    }
    for path in current.keys() {
        if !previous.contains_key(path) {
            changed.insert(path);
        }
    }
    changed.into_iter().cloned().collect()
}

/// The paths (in input order) matched by at least one of `globs`.
pub fn paths_matching_any(globs: &[String], paths: &[String]) -> Vec<String> {
    paths.iter().filter(|p| globs.iter().any(|g| glob_matches(g, p))).cloned().collect()
}

fn compile(pattern: &str) -> Result<Pattern, String> {
    let bad = |why: &str| Err(format!("invalid glob {pattern:?}: {why}"));
    if pattern.trim().is_empty() {
        return bad("pattern is empty");
    }
    let anchored = pattern.starts_with('/');
    let mut body = pattern.trim_start_matches('/').to_string();
    if body.is_empty() {
        return bad("pattern names no path");
    }
    if body.ends_with('/') {
        body.push_str("**");
    }
    let chars: Vec<char> = body.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let Some(c) = chars.get(i + 1) else {
                    return bad("ends with an unescaped \\");
                };
                tokens.push(Token::Char(*c));
                i += 2;
            }
            '*' => {
                let run = chars[i..].iter().take_while(|c| **c == '*').count();
                i += run;
                if run == 1 {
                    tokens.push(Token::Star);
                } else if chars.get(i) == Some(&'/') {
                    tokens.push(Token::DoubleStarSlash);
                    i += 1;
                } else {
                    tokens.push(Token::DoubleStar);
                }
            }
            '?' => {
                tokens.push(Token::AnyChar);
                i += 1;
            }
            '[' => {
                let (token, next) = match parse_class(&chars, i + 1) {
                    Ok(parsed) => parsed,
                    Err(why) => return bad(&why),
                };
                tokens.push(token);
                i = next;
            }
            c => {
                tokens.push(Token::Char(c));
                i += 1;
            }
        }
    }
    Ok(Pattern { tokens, anchored })
}

/// Parse a character class starting just after `[`; returns the token and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Token, usize), String> {
    let negated = matches!(chars.get(i), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1)?;
            hi = h;
            i = next;
        }
        if lo > hi {
            return Err(format!("character range {lo}-{hi} is reversed"));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    match chars.get(i) {
        None => Err("unclosed [ character class".into()),
        Some('\\') => match chars.get(i + 1) {
            Some(c) => Ok((*c, i + 2)),
            None => Err("unclosed [ character class".into()),
        },
        Some(c @ ('-' | ']')) => Err(format!("unexpected {c:?} in character class (escape it with \\)")),
        Some(c) => Ok((*c, i + 1)),
    }
}

/// Dynamic programming over (token index, path index): `ok[t][s]` = tokens[t..] match path[s..].
fn matches_tokens(tokens: &[Token], path: &str) -> bool {
    let s: Vec<char> = path.chars().collect();
    let n = s.len();
    let mut next_row: Vec<bool> = (0..=n).map(|si| si == n).collect();
    for token in tokens.iter().rev() {
        let mut row = vec![false; n + 1];
        let mut slash_then_rest = false; // some k >= si with s[k] == '/' and next_row[k + 1]
        for si in (0..=n).rev() {
            if si < n && s[si] == '/' && next_row[si + 1] {
                slash_then_rest = true;
            }
            let here = s.get(si).copied();
            row[si] = match token {
                Token::Char(c) => here == Some(*c) && next_row[si + 1],
                Token::AnyChar => here.is_some_and(|c| c != '/') && next_row[si + 1],
                Token::Class { negated, ranges } => {
                    here.is_some_and(|c| c != '/' && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated)
                        && next_row[si + 1]
                }
                Token::Star => next_row[si] || (here.is_some_and(|c| c != '/') && row[si + 1]),
                Token::DoubleStar => next_row[si] || (here.is_some() && row[si + 1]),
                Token::DoubleStarSlash => next_row[si] || slash_then_rest,
            };
        }
        next_row = row;
    }
    next_row[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_matches_full_path_or_basename() {
        assert!(glob_matches("app.conf", "app.conf"));
        assert!(glob_matches("app.conf", "conf/app.conf"));
        assert!(glob_matches("conf/app.conf", "conf/app.conf"));
        assert!(!glob_matches("conf/app.conf", "x/conf/app.conf"));
        assert!(!glob_matches("app.conf", "app.conf.bak"));
    }

    #[test]
    fn star_and_question_stay_in_a_segment() {
        assert!(glob_matches("*.conf", "a.conf"));
        assert!(glob_matches("*.conf", "deep/dir/a.conf"), "basename match");
        assert!(glob_matches("conf/*.yml", "conf/a.yml"));
        assert!(!glob_matches("conf/*.yml", "conf/sub/a.yml"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "a/c"));
        assert!(glob_matches("*", "anything/at/all"));
    }

    #[test]
    fn double_star_forms() {
        assert!(glob_matches("**/x.yml", "x.yml"));
        assert!(glob_matches("**/x.yml", "a/b/x.yml"));
        assert!(glob_matches("conf/**", "conf/a"));
        assert!(glob_matches("conf/**", "conf/a/b/c"));
        assert!(!glob_matches("conf/**", "other/a"));
        assert!(glob_matches("a**b", "a/x/y/b"));
        assert!(glob_matches("a**b", "ab"));
        assert!(glob_matches("conf/**/*.yml", "conf/x.yml"));
        assert!(glob_matches("conf/**/*.yml", "conf/a/b/x.yml"));
        assert!(!glob_matches("conf/**/*.yml", "conf/a/b/x.txt"));
    }

    #[test]
    fn classes_escapes_anchors_and_dirs() {
        assert!(glob_matches("file[0-9].txt", "file7.txt"));
        assert!(!glob_matches("file[^0-9].txt", "file7.txt"));
        assert!(glob_matches("file[!0-9].txt", "filex.txt"));
        assert!(glob_matches("[ab]", "b"));
        assert!(glob_matches("a\\*b", "a*b"));
        assert!(!glob_matches("a\\*b", "axb"));
        assert!(glob_matches("/app.conf", "app.conf"));
        assert!(!glob_matches("/app.conf", "conf/app.conf"));
        assert!(glob_matches("certs/", "certs/api.crt"));
        assert!(glob_matches("x", "./x"));
    }

    #[test]
    fn invalid_patterns() {
        assert_eq!(validate_glob("conf/[a-"), Err("invalid glob \"conf/[a-\": unclosed [ character class".into()));
        assert!(validate_glob("").unwrap_err().contains("empty"));
        assert!(validate_glob("/").unwrap_err().contains("names no path"));
        assert!(validate_glob("[]").is_err());
        assert!(validate_glob("[z-a]").unwrap_err().contains("reversed"));
        assert!(validate_glob("a\\").unwrap_err().contains("unescaped"));
        assert!(validate_glob("[a").is_err());
        assert!(!glob_matches("[a", "[a"));
        assert!(validate_glob("[]a]").is_err(), "as in Go, a class cannot start with ]");
        for ok in ["*.conf", "**/x", "dir/**", "a**b", "[\\]]", "?", "conf/"] {
            assert!(validate_glob(ok).is_ok(), "{ok}");
        }
        assert!(glob_matches("[\\]]", "]"));
    }

    #[test]
    fn changed_paths_is_symmetric_difference_with_modifications() {
        let prev = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string()),
        ]);
        let cur = BTreeMap::from([
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "changed".to_string()),
            ("d".to_string(), "4".to_string()),
        ]);
        assert_eq!(changed_paths(&prev, &cur), vec!["a", "c", "d"]);
        assert!(changed_paths(&cur, &cur).is_empty());
        assert_eq!(
            paths_matching_any(&["*.yml".into()], &["a.yml".into(), "b.txt".into(), "c/d.yml".into()]),
            vec!["a.yml", "c/d.yml"]
        );
    }
}
