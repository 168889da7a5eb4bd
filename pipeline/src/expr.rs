//! `rules:if` and `only:variables` expressions: parsed once, evaluated per job.
//!
//! The grammar is GitLab's (CI/CD YAML reference, "rules:if" and "CI/CD variable
//! expressions"): operands are `$VAR`/`${VAR}`, `"strings"`/`'strings'`, `/regex/flags` and
//! `null`; comparisons `==`, `!=`, `=~`, `!~`; `&&` binds tighter than `||`; parentheses group.
//! A variable alone is true when it is set and not empty; an unset variable equals `null`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Operand(Operand),
    Compare(Operand, CompareOp, Operand),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum Operand {
    Variable(String),
    Text(String),
    Pattern(Pattern),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Matches,
    NotMatches,
}

/// A `/regex/flags` literal, compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    /// Shared by every job using the same pattern (with its match caches).
    pub regex: Arc<Regex>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Variable(String),
    Text(String),
    Pattern(String, String),
    Null,
    Op(CompareOp),
    And,
    Or,
    Open,
    Close,
}

/// Longest expression accepted, to bound the work on hostile input.
const MAX_LEN: usize = 10_000;
/// Deepest parenthesis nesting accepted.
const MAX_DEPTH: usize = 64;

/// Parses an expression; the error says what is wrong in words.
pub fn parse(text: &str) -> Result<Expr, String> {
    if text.len() > MAX_LEN {
        return Err(format!("expression longer than {MAX_LEN} characters"));
    }
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("empty expression".into());
    }
    let mut parser = ExprParser {
        tokens,
        at: 0,
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(token) => Err(format!("unexpected {} in expression", describe(token))),
    }
}

/// Compiles `/pattern/flags` (flags `i`, `m`, `s`, `x`; Ruby's `m` is dot-matches-newline).
pub fn compile_pattern(literal: &str) -> Result<Pattern, String> {
    let body = literal
        .strip_prefix('/')
        .ok_or_else(|| format!("'{literal}' is not a /regex/"))?;
    let end = body
        .rfind('/')
        .ok_or_else(|| format!("'{literal}' is not a /regex/"))?;
    compile(&body[..end], &body[end + 1..])
}

fn compile(pattern: &str, flags: &str) -> Result<Pattern, String> {
    let mut inline = String::new();
    for flag in flags.chars() {
        match flag {
            'i' | 's' | 'x' => inline.push(flag),
            'm' => inline.push('s'),
            other => {
                return Err(format!(
                    "unknown regex flag '{other}' in /{pattern}/{flags}"
                ));
            }
        }
    }
    let full = if inline.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{inline}){pattern}")
    };
    let regex = cached_regex(&full)
        .map_err(|e| format!("invalid regex /{pattern}/: {}", first_line(&e)))?;
    Ok(Pattern {
        source: format!("/{pattern}/{flags}"),
        regex,
    })
}

thread_local! {
    /// Compiled regexes by source: a pipeline repeats a few patterns in many jobs, and
    /// compiling dominates the cost of reading `rules`.
    static COMPILED: RefCell<HashMap<String, Result<Arc<Regex>, String>>> = RefCell::new(HashMap::new());
}

/// Bound on the cache, so that generated input cannot grow it without limit.
const MAX_CACHED: usize = 4096;

fn cached_regex(source: &str) -> Result<Arc<Regex>, String> {
    COMPILED.with(|cache| {
        if let Some(found) = cache.borrow().get(source) {
            return found.clone();
        }
        let built = regex::RegexBuilder::new(source)
            .size_limit(1 << 20)
            .build()
            .map(Arc::new)
            .map_err(|e| e.to_string());
        let mut cache = cache.borrow_mut();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(source.to_owned(), built.clone());
        built
    })
}

fn first_line(text: &str) -> &str {
    text.lines().last().unwrap_or(text).trim()
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '=' if next == Some('=') => {
                tokens.push(Token::Op(CompareOp::Equal));
                i += 2;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Op(CompareOp::NotEqual));
                i += 2;
            }
            '=' if next == Some('~') => {
                tokens.push(Token::Op(CompareOp::Matches));
                i += 2;
            }
            '!' if next == Some('~') => {
                tokens.push(Token::Op(CompareOp::NotMatches));
                i += 2;
            }
            '$' => {
                let braced = next == Some('{');
                let start = if braced { i + 2 } else { i + 1 };
                let mut end = start;
                while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                if end == start {
                    return Err(format!(
                        "'$' without a variable name at character {}",
                        i + 1
                    ));
                }
                let name: String = chars[start..end].iter().collect();
                if braced {
                    if chars.get(end) != Some(&'}') {
                        return Err(format!("unclosed '${{{name}'"));
                    }
                    end += 1;
                }
                tokens.push(Token::Variable(name));
                i = end;
            }
            '"' | '\'' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or("unclosed string literal")?;
                tokens.push(Token::Text(chars[i + 1..i + 1 + close].iter().collect()));
                i += close + 2;
            }
            '/' => {
                let mut end = i + 1;
                let mut escaped = false;
                while end < chars.len() && (escaped || chars[end] != '/') {
                    escaped = !escaped && chars[end] == '\\';
                    end += 1;
                }
                if end >= chars.len() {
                    return Err("unclosed /regex/".into());
                }
                let pattern: String = chars[i + 1..end].iter().collect();
                let mut flags_end = end + 1;
                while flags_end < chars.len() && chars[flags_end].is_ascii_alphabetic() {
                    flags_end += 1;
                }
                let flags: String = chars[end + 1..flags_end].iter().collect();
                tokens.push(Token::Pattern(pattern, flags));
                i = flags_end;
            }
            _ if c.is_alphabetic() => {
                let mut end = i;
                while end < chars.len() && chars[end].is_alphanumeric() {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                if word != "null" {
                    return Err(format!(
                        "unknown word '{word}' (a variable needs '$', a string quotes)"
                    ));
                }
                tokens.push(Token::Null);
                i = end;
            }
            _ => return Err(format!("unexpected character '{c}' in expression")),
        }
    }
    Ok(tokens)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Variable(name) => format!("variable ${name}"),
        Token::Text(text) => format!("string \"{text}\""),
        Token::Pattern(p, f) => format!("regex /{p}/{f}"),
        Token::Null => "null".into(),
        Token::Op(_) => "comparison operator".into(),
        Token::And => "'&&'".into(),
        Token::Or => "'||'".into(),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
    }
}

struct ExprParser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.comparison()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Open) {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(format!("parentheses nested deeper than {MAX_DEPTH}"));
            }
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::Close) {
                return Err("missing ')'".into());
            }
            self.at += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        let Some(Token::Op(op)) = self.peek().cloned() else {
            return Ok(Expr::Operand(left));
        };
        self.at += 1;
        let right = self.operand()?;
        if matches!(op, CompareOp::Matches | CompareOp::NotMatches)
            && matches!(right, Operand::Text(_) | Operand::Null)
        {
            return Err("the right side of =~ and !~ must be a /regex/ or a variable".into());
        }
        Ok(Expr::Compare(left, op, right))
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let token = self.peek().cloned().ok_or("expression ends too early")?;
        self.at += 1;
        match token {
            Token::Variable(name) => Ok(Operand::Variable(name)),
            Token::Text(text) => Ok(Operand::Text(text)),
            Token::Null => Ok(Operand::Null),
            Token::Pattern(pattern, flags) => Ok(Operand::Pattern(compile(&pattern, &flags)?)),
            other => Err(format!("expected a value, found {}", describe(&other))),
        }
    }
}

/// A value during evaluation: `None` is an unset variable or `null`.
type Val = Option<String>;

impl Expr {
    /// Evaluates against `lookup` (a variable's value, `None` when unset).
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::Operand(operand) => truthy(&value(operand, lookup)),
            Expr::Compare(left, op, right) => compare(left, *op, right, lookup),
            Expr::And(a, b) => a.eval(lookup) && b.eval(lookup),
            Expr::Or(a, b) => a.eval(lookup) || b.eval(lookup),
        }
    }
}

fn truthy(value: &Val) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

fn value(operand: &Operand, lookup: &dyn Fn(&str) -> Option<String>) -> Val {
    match operand {
        Operand::Variable(name) => lookup(name),
        Operand::Text(text) => Some(text.clone()),
        Operand::Pattern(pattern) => Some(pattern.source.clone()),
        Operand::Null => None,
    }
}

fn compare(
    left: &Operand,
    op: CompareOp,
    right: &Operand,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    match op {
        CompareOp::Equal => value(left, lookup) == value(right, lookup),
        CompareOp::NotEqual => value(left, lookup) != value(right, lookup),
        CompareOp::Matches => matches(left, right, lookup),
        CompareOp::NotMatches => !matches(left, right, lookup),
    }
}

/// `=~`: the right side is a regex literal or a variable holding `/regex/flags`.
/// An unset left side never matches.
fn matches(left: &Operand, right: &Operand, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    let Some(text) = value(left, lookup) else {
        return false;
    };
    match right {
        Operand::Pattern(pattern) => pattern.regex.is_match(&text),
        Operand::Variable(name) => lookup(name)
            .and_then(|literal| compile_pattern(&literal).ok())
            .is_some_and(|pattern| pattern.regex.is_match(&text)),
        Operand::Text(_) | Operand::Null => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, &str)]) -> bool {
        let expr = parse(text).unwrap();
        expr.eval(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    // "CI/CD variable expressions": compare a variable to a string.
    #[test]
    fn equality_and_inequality() {
        assert!(eval(
            "$CI_COMMIT_BRANCH == \"main\"",
            &[("CI_COMMIT_BRANCH", "main")]
        ));
        assert!(eval(
            "$CI_COMMIT_BRANCH != 'main'",
            &[("CI_COMMIT_BRANCH", "dev")]
        ));
        assert!(eval(
            "\"main\" == $CI_COMMIT_BRANCH",
            &[("CI_COMMIT_BRANCH", "main")]
        ));
        assert!(eval("$A == $B", &[("A", "x"), ("B", "x")]));
    }

    // "Check if a variable is undefined": `$VAR == null`; an empty variable is not null.
    #[test]
    fn null_and_unset() {
        assert!(eval("$UNSET == null", &[]));
        assert!(!eval("$EMPTY == null", &[("EMPTY", "")]));
        assert!(eval("$EMPTY == \"\"", &[("EMPTY", "")]));
        assert!(eval("$SET != null", &[("SET", "1")]));
    }

    // "Check if a variable is defined": a variable alone is true when set and not empty.
    #[test]
    fn variable_alone() {
        assert!(eval("$A", &[("A", "x")]));
        assert!(!eval("$A", &[("A", "")]));
        assert!(!eval("$A", &[]));
        assert!(eval("${A}", &[("A", "x")]));
    }

    // "Compare a variable to a regular expression pattern", flags like /i.
    #[test]
    fn regex_matching() {
        assert!(eval(
            "$CI_COMMIT_TAG =~ /^v\\d+\\.\\d+/",
            &[("CI_COMMIT_TAG", "v1.2")]
        ));
        assert!(eval("$B =~ /^FEATURE/i", &[("B", "feature-x")]));
        assert!(eval("$B !~ /^release/", &[("B", "main")]));
        assert!(!eval("$UNSET =~ /.*/", &[]));
        // "Use a variable on the right side of =~".
        assert!(eval("$B =~ $RE", &[("B", "rel-1"), ("RE", "/^rel-/")]));
    }

    // "Join variable expressions together with && or ||": && binds tighter, parentheses group.
    #[test]
    fn precedence_and_parentheses() {
        assert!(eval("$A || $B && $C", &[("A", "1")]));
        assert!(!eval("($A || $B) && $C", &[("A", "1")]));
        assert!(eval("($A || $B) && ($C == null)", &[("B", "1")]));
    }

    #[test]
    fn errors_are_words() {
        assert!(parse("$A ==").unwrap_err().contains("ends too early"));
        assert!(parse("($A").unwrap_err().contains("missing ')'"));
        assert!(parse("$A == main").unwrap_err().contains("unknown word"));
        assert!(parse("$A =~ \"x\"").unwrap_err().contains("right side"));
        assert!(parse("$A =~ /(/").unwrap_err().contains("invalid regex"));
    }
}
