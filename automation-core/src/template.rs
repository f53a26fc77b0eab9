//! Templates for every text an action sends.
//!
//! Templates are parsed and validated once, when a rule is compiled; rendering never fails and makes
//! one allocation, its output (or none, with [`Template::render_into`] and a reused buffer).
//!
//! # Syntax
//!
//! | Syntax | Meaning |
//! |---|---|
//! | `{{first_name}}` | a variable: `first_name`, `name`, `username`, `keyword` (the keyword that matched), `field.NAME` (a custom field; `NAME` is letters, digits, `_`, `-`) |
//! | `{{first_name\|there}}` | a fallback, used when the variable is missing or empty; quote it (`{{first_name\|"upper"}}`) if it is the name of a filter or contains `\|` or `}` |
//! | `{{username\|upper}}` | filters: `upper`, `lower`, `title`, `truncate(N)` (keep at most N characters). Case filters apply first, then truncation, whatever their order; they also apply to the fallback |
//! | `{Hi\|Hello\|Hey}` | spin variants: one is chosen at random (seeded) on every render; variants are plain text |
//! | `\{` `\}` `\|` `\\` | literal `{`, `}`, `\|`, `\` (a lone `}` is literal too) |
//!
//! # Worst-case length
//!
//! Each variable has a maximum length ([`MAX_NAME_CHARS`], [`MAX_FIRST_NAME_CHARS`],
//! [`MAX_USERNAME_CHARS`], [`MAX_KEYWORD_CHARS`], [`MAX_FIELD_CHARS`]; the engine truncates values
//! to these before rendering), every non-ASCII character may take 4 bytes, and case filters may
//! triple a text (`ΐ` uppercases to three characters). The worst case must fit the limit of the
//! place the text goes to (1000 UTF-8 bytes for a message); otherwise the template is rejected
//! with the line and column of the piece that overflows. Use `truncate(N)` to bound a variable.
//!
//! ```
//! use automation_core::template::{Template, Vars};
//! let t = Template::parse("{Hi|Hello} {{first_name|there}}, your code is {{field.code|upper}}!").unwrap();
//! let fields = [("code".to_string(), "ab12".to_string())].into_iter().collect();
//! let vars = Vars { first_name: Some("Ana"), fields: Some(&fields), ..Vars::default() };
//! let out = t.render(&vars, 7);
//! assert!(out == "Hi Ana, your code is AB12!" || out == "Hello Ana, your code is AB12!");
//! assert_eq!(Template::parse("{{first_nme}}").unwrap_err().position(), Some((1, 3)));
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use crate::error::{Error, ErrorKind};

/// Maximum characters of `{{first_name}}`.
pub const MAX_FIRST_NAME_CHARS: usize = 32;
/// Maximum characters of `{{name}}`.
pub const MAX_NAME_CHARS: usize = 64;
/// Maximum characters of `{{username}}` (Instagram usernames are ASCII, at most 30).
pub const MAX_USERNAME_CHARS: usize = 30;
/// Maximum characters of `{{keyword}}`.
pub const MAX_KEYWORD_CHARS: usize = 100;
/// Maximum characters of a custom field value.
pub const MAX_FIELD_CHARS: usize = 200;
/// Instagram's limit for a message text, in UTF-8 bytes.
pub const MESSAGE_TEXT_MAX_BYTES: usize = 1000;

/// The limit of the place a template's output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextLimit {
    /// At most this many UTF-8 bytes.
    Bytes(usize),
    /// At most this many characters.
    Chars(usize),
    /// No limit.
    None,
}

impl TextLimit {
    /// A message text: 1000 bytes.
    pub const MESSAGE: TextLimit = TextLimit::Bytes(MESSAGE_TEXT_MAX_BYTES);
}

/// A template variable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Var {
    /// The contact's first name.
    FirstName,
    /// The contact's display name.
    Name,
    /// The contact's username.
    Username,
    /// The keyword that matched.
    Keyword,
    /// A custom field.
    Field(String),
}

impl Var {
    fn max_chars(&self) -> usize {
        match self {
            Var::FirstName => MAX_FIRST_NAME_CHARS,
            Var::Name => MAX_NAME_CHARS,
            Var::Username => MAX_USERNAME_CHARS,
            Var::Keyword => MAX_KEYWORD_CHARS,
            Var::Field(_) => MAX_FIELD_CHARS,
        }
    }

    fn max_bytes(&self) -> usize {
        match self {
            Var::Username => MAX_USERNAME_CHARS,
            other => other.max_chars() * 4,
        }
    }
}

/// The values a template is rendered with. Missing values render their fallback (or nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// `{{first_name}}`.
    pub first_name: Option<&'a str>,
    /// `{{name}}`.
    pub name: Option<&'a str>,
    /// `{{username}}`.
    pub username: Option<&'a str>,
    /// `{{keyword}}`.
    pub keyword: Option<&'a str>,
    /// `{{field.NAME}}`.
    pub fields: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Vars<'a> {
    fn get(&self, var: &Var) -> Option<&'a str> {
        match var {
            Var::FirstName => self.first_name,
            Var::Name => self.name,
            Var::Username => self.username,
            Var::Keyword => self.keyword,
            Var::Field(name) => self.fields.and_then(|f| f.get(name)).map(String::as_str),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Lower,
    Title,
}

/// A piece as parsed: text as ranges into the parser's literal buffer.
#[derive(Debug, Clone)]
enum RawPiece {
    Text(Range<usize>),
    Var {
        var: Var,
        fallback: Option<Range<usize>>,
        case: Option<Case>,
        truncate: Option<usize>,
    },
    Spin(Vec<Range<usize>>),
}

/// A stored piece: literal text owned, so rendering copies without slicing.
#[derive(Debug, Clone)]
enum Piece {
    Text(Box<str>),
    Var {
        var: Var,
        fallback: Option<Box<str>>,
        case: Option<Case>,
        truncate: Option<usize>,
    },
    Spin(Vec<Box<str>>),
}

/// A parsed, validated template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
    /// Byte offset in `source` where each piece starts.
    starts: Vec<usize>,
    /// Bytes of the text pieces plus the longest variant of each spin.
    fixed_bytes: usize,
    /// Number of variables.
    var_count: usize,
}

/// Worst-case (characters, bytes) of a piece.
type Size = (usize, usize);

impl Template {
    /// Parses `source`. Errors ([`ErrorKind::InvalidTemplate`]) carry the line and column.
    pub fn parse(source: &str) -> Result<Template, Error> {
        Parser {
            src: source,
            pos: 0,
            literals: String::new(),
            pieces: Vec::new(),
            starts: Vec::new(),
        }
        .run()
    }

    /// Parses `source` and checks its worst-case output against `limit`.
    pub fn parse_with_limit(source: &str, limit: TextLimit) -> Result<Template, Error> {
        let t = Self::parse(source)?;
        t.check_limit(limit)?;
        Ok(t)
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has no variables and no spins.
    pub fn is_plain(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// The worst-case output size as (characters, bytes).
    pub fn worst_case(&self) -> (usize, usize) {
        self.pieces.iter().fold((0, 0), |(c, b), p| {
            let (pc, pb) = self.piece_size(p);
            (c.saturating_add(pc), b.saturating_add(pb))
        })
    }

    /// Checks the worst-case output against `limit`; the error points at the piece that overflows.
    pub fn check_limit(&self, limit: TextLimit) -> Result<(), Error> {
        let (mut chars, mut bytes) = (0usize, 0usize);
        for (piece, &start) in self.pieces.iter().zip(&self.starts) {
            let (c, b) = self.piece_size(piece);
            chars = chars.saturating_add(c);
            bytes = bytes.saturating_add(b);
            let over =
                match limit {
                    TextLimit::Bytes(max) => (bytes > max)
                        .then(|| format!("{bytes} bytes, over the limit of {max} bytes")),
                    TextLimit::Chars(max) => (chars > max)
                        .then(|| format!("{chars} characters, over the limit of {max}")),
                    TextLimit::None => None,
                };
            if let Some(what) = over {
                let (line, column) = crate::rule::line_column(&self.source, start);
                return Err(Error::new(
                    ErrorKind::InvalidTemplate,
                    format!(
                        "the text can reach {what} here in the worst case; shorten it or bound variables with `truncate(N)`"
                    ),
                )
                .at(line, column));
            }
        }
        Ok(())
    }

    fn piece_size(&self, piece: &Piece) -> Size {
        let lit = |s: &str| (s.chars().count(), s.len());
        match piece {
            Piece::Text(t) => lit(t),
            Piece::Spin(options) => options
                .iter()
                .map(|o| lit(o))
                .fold((0, 0), |(c, b), (oc, ob)| (c.max(oc), b.max(ob))),
            Piece::Var {
                var,
                fallback,
                case,
                truncate,
            } => {
                let (mut c, mut b) = (var.max_chars(), var.max_bytes());
                if let Some(f) = fallback {
                    let (fc, fb) = lit(f);
                    c = c.max(fc);
                    b = b.max(fb);
                }
                if case.is_some() {
                    c = c.saturating_mul(3);
                    b = b.saturating_mul(3);
                }
                if let Some(n) = truncate {
                    c = c.min(*n);
                    b = b.min(n.saturating_mul(4));
                }
                (c, b)
            }
        }
    }

    /// Renders with `vars`; `seed` chooses spin variants (same seed, same output).
    ///
    /// Rendering makes one allocation, the output string, sized for the template's text plus
    /// [`VAR_RESERVE_BYTES`] per variable (it grows once if the values are longer). Use
    /// [`Template::render_into`] with a reused buffer to render without allocating.
    pub fn render(&self, vars: &Vars<'_>, seed: u64) -> String {
        let mut out = String::with_capacity(self.fixed_bytes + VAR_RESERVE_BYTES * self.var_count);
        self.write(vars, seed, &mut out);
        out
    }

    fn resolve<'s>(&'s self, var: &Var, fallback: Option<&'s str>, vars: &Vars<'s>) -> &'s str {
        match vars.get(var) {
            Some(v) if !is_blank(v) => v,
            _ => fallback.unwrap_or(""),
        }
    }

    /// Renders into `out` (appending).
    pub fn render_into(&self, vars: &Vars<'_>, seed: u64, out: &mut String) {
        self.write(vars, seed, out);
    }

    fn write(&self, vars: &Vars<'_>, seed: u64, out: &mut String) {
        let mut rng = SplitMix(seed);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Spin(options) => {
                    let i = rng.below(options.len());
                    if let Some(o) = options.get(i) {
                        out.push_str(o);
                    }
                }
                Piece::Var {
                    var,
                    fallback,
                    case,
                    truncate,
                } => {
                    let value = self.resolve(var, fallback.as_deref(), vars);
                    let limit = truncate.unwrap_or(var.max_chars().max(value.len()));
                    push_filtered(out, value, *case, limit);
                }
            }
        }
    }
}

/// Whether a value is empty or only whitespace (fast for the common non-blank ASCII start).
#[inline]
fn is_blank(v: &str) -> bool {
    match v.as_bytes().first() {
        None => true,
        Some(b) if b.is_ascii() && !b.is_ascii_whitespace() => false,
        _ => v.trim().is_empty(),
    }
}

/// Bytes reserved per variable by [`Template::render`].
pub const VAR_RESERVE_BYTES: usize = 24;

fn push_filtered(out: &mut String, value: &str, case: Option<Case>, limit: usize) {
    let mut n = 0;
    let mut push = |c: char, out: &mut String| {
        if n < limit {
            out.push(c);
            n += 1;
        }
    };
    match case {
        None => {
            if value.len() <= limit {
                out.push_str(value);
            } else {
                for c in value.chars() {
                    push(c, out);
                }
            }
        }
        Some(Case::Upper) => value
            .chars()
            .flat_map(char::to_uppercase)
            .for_each(|c| push(c, out)),
        Some(Case::Lower) => value
            .chars()
            .flat_map(char::to_lowercase)
            .for_each(|c| push(c, out)),
        Some(Case::Title) => {
            let mut at_word_start = true;
            for c in value.chars() {
                if c.is_alphanumeric() {
                    if at_word_start {
                        c.to_uppercase().for_each(|u| push(u, out));
                    } else {
                        c.to_lowercase().for_each(|l| push(l, out));
                    }
                    at_word_start = false;
                } else {
                    push(c, out);
                    at_word_start = c.is_whitespace() || c == '-';
                }
            }
        }
    }
}

/// A tiny deterministic generator (SplitMix64) for spin variants and public-reply variants.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        (self.next() % n as u64) as usize
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    literals: String,
    pieces: Vec<RawPiece>,
    starts: Vec<usize>,
}

impl Parser<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> Error {
        let (line, column) = crate::rule::line_column(self.src, at);
        Error::new(ErrorKind::InvalidTemplate, message).at(line, column)
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn run(mut self) -> Result<Template, Error> {
        let mut text_start: Option<(usize, usize)> = None; // (source pos, literal pos)
        while let Some(c) = self.peek() {
            let here = self.pos;
            if c == '{' {
                if let Some((src_at, lit_at)) = text_start.take() {
                    self.push_piece(RawPiece::Text(lit_at..self.literals.len()), src_at);
                }
                if self.src[here..].starts_with("{{") {
                    self.expression()?;
                } else {
                    self.spin()?;
                }
                continue;
            }
            if text_start.is_none() {
                text_start = Some((here, self.literals.len()));
            }
            self.literal_char()?;
        }
        if let Some((src_at, lit_at)) = text_start {
            self.push_piece(RawPiece::Text(lit_at..self.literals.len()), src_at);
        }
        let lit =
            |r: &Range<usize>| -> Box<str> { self.literals.get(r.clone()).unwrap_or("").into() };
        let pieces: Vec<Piece> = self
            .pieces
            .iter()
            .map(|p| match p {
                RawPiece::Text(r) => Piece::Text(lit(r)),
                RawPiece::Spin(o) => Piece::Spin(o.iter().map(lit).collect()),
                RawPiece::Var {
                    var,
                    fallback,
                    case,
                    truncate,
                } => Piece::Var {
                    var: var.clone(),
                    fallback: fallback.as_ref().map(lit),
                    case: *case,
                    truncate: *truncate,
                },
            })
            .collect();
        let fixed_bytes = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Spin(o) => o.iter().map(|o| o.len()).max().unwrap_or(0),
                Piece::Var { .. } => 0,
            })
            .sum();
        let var_count = pieces
            .iter()
            .filter(|p| matches!(p, Piece::Var { .. }))
            .count();
        Ok(Template {
            source: self.src.to_string(),
            pieces,
            starts: self.starts,
            fixed_bytes,
            var_count,
        })
    }

    fn push_piece(&mut self, piece: RawPiece, at: usize) {
        self.pieces.push(piece);
        self.starts.push(at);
    }

    /// Consumes one literal character (resolving escapes) into `literals`.
    fn literal_char(&mut self) -> Result<(), Error> {
        let Some(c) = self.peek() else { return Ok(()) };
        self.pos += c.len_utf8();
        if c == '\\' {
            match self.peek() {
                Some(e @ ('{' | '}' | '|' | '\\' | '"')) => {
                    self.pos += 1;
                    self.literals.push(e);
                }
                _ => self.literals.push('\\'),
            }
        } else {
            self.literals.push(c);
        }
        Ok(())
    }

    fn spin(&mut self) -> Result<(), Error> {
        let open = self.pos;
        self.pos += 1;
        let mut options = Vec::new();
        let mut start = self.literals.len();
        loop {
            match self.peek() {
                None => {
                    return Err(self.err(open, "spin variants `{` are not closed; add `}` or write `\\{` for a literal brace"))
                }
                Some('}') => {
                    self.pos += 1;
                    options.push(start..self.literals.len());
                    break;
                }
                Some('|') => {
                    self.pos += 1;
                    options.push(start..self.literals.len());
                    start = self.literals.len();
                }
                Some('{') => {
                    return Err(self.err(self.pos, "spin variants cannot contain `{` or variables; write `\\{` for a literal brace"))
                }
                Some(_) => self.literal_char()?,
            }
        }
        self.push_piece(RawPiece::Spin(options), open);
        Ok(())
    }

    fn expression(&mut self) -> Result<(), Error> {
        let open = self.pos;
        self.pos += 2;
        // split into segments on `|`, honouring quotes
        let mut segments: Vec<(usize, String, bool)> = Vec::new(); // (source start, text, quoted)
        let mut seg_start = self.pos;
        let mut current = String::new();
        let mut quoted = false;
        let mut in_quote = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "`{{` is not closed; add `}}`"));
            };
            if in_quote {
                self.pos += c.len_utf8();
                match c {
                    '"' => in_quote = false,
                    '\\' => {
                        if let Some(e) = self.peek() {
                            self.pos += e.len_utf8();
                            current.push(e);
                        }
                    }
                    _ => current.push(c),
                }
                continue;
            }
            if self.src[self.pos..].starts_with("}}") {
                segments.push((seg_start, std::mem::take(&mut current), quoted));
                self.pos += 2;
                break;
            }
            self.pos += c.len_utf8();
            match c {
                '|' => {
                    segments.push((seg_start, std::mem::take(&mut current), quoted));
                    seg_start = self.pos;
                    quoted = false;
                }
                '"' if current.trim().is_empty() => {
                    current.clear();
                    in_quote = true;
                    quoted = true;
                }
                '{' => {
                    return Err(self.err(
                        self.pos - 1,
                        "`{` inside `{{ }}`; close the variable with `}}` first",
                    ))
                }
                _ => current.push(c),
            }
        }
        let mut segments = segments.into_iter();
        let Some((name_at, name, _)) = segments.next() else {
            return Err(self.err(open, "empty `{{}}`"));
        };
        let name_trimmed = name.trim();
        let name_at = name_at + (name.len() - name.trim_start().len());
        let var = match name_trimmed {
            "first_name" => Var::FirstName,
            "name" => Var::Name,
            "username" => Var::Username,
            "keyword" => Var::Keyword,
            "" => return Err(self.err(name_at, "a variable name is missing inside `{{ }}`")),
            other => match other.strip_prefix("field.") {
                Some(f) if !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') => {
                    Var::Field(f.to_string())
                }
                _ => {
                    return Err(self.err(
                        name_at,
                        format!(
                            "unknown variable `{other}`; use first_name, name, username, keyword or field.NAME"
                        ),
                    ))
                }
            },
        };
        let mut fallback = None;
        let mut case = None;
        let mut truncate: Option<usize> = None;
        for (at, seg, quoted) in segments {
            let t = seg.trim();
            let at = at + (seg.len() - seg.trim_start().len());
            if !quoted {
                match t {
                    "upper" => {
                        case = Some(Case::Upper);
                        continue;
                    }
                    "lower" => {
                        case = Some(Case::Lower);
                        continue;
                    }
                    "title" => {
                        case = Some(Case::Title);
                        continue;
                    }
                    "" => return Err(self.err(at, "empty filter or fallback after `|`")),
                    _ => {}
                }
                if let Some(arg) = t
                    .strip_prefix("truncate(")
                    .and_then(|r| r.strip_suffix(')'))
                {
                    let n: usize = arg.trim().parse().map_err(|_| {
                        self.err(
                            at,
                            format!("`truncate` needs a whole number of characters, got `{arg}`"),
                        )
                    })?;
                    truncate = Some(truncate.map_or(n, |m| m.min(n)));
                    continue;
                }
                if t.starts_with("truncate") {
                    return Err(self.err(at, "write `truncate(N)` with a number of characters"));
                }
            }
            if fallback.is_some() {
                return Err(self.err(at, "only one fallback is allowed per variable"));
            }
            let value = if quoted { seg.as_str() } else { t };
            let start = self.literals.len();
            self.literals.push_str(value);
            fallback = Some(start..self.literals.len());
        }
        self.push_piece(
            RawPiece::Var {
                var,
                fallback,
                case,
                truncate,
            },
            open,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vars<'a>(fields: &'a BTreeMap<String, String>) -> Vars<'a> {
        Vars {
            first_name: Some("ana"),
            name: Some("ana costa"),
            username: Some("ana.c"),
            keyword: Some("link"),
            fields: Some(fields),
        }
    }

    #[test]
    fn variables_filters_fallbacks() {
        let fields: BTreeMap<_, _> = [("plan".into(), "Gold".into())].into_iter().collect();
        let v = vars(&fields);
        let r = |s: &str| Template::parse(s).unwrap().render(&v, 1);
        assert_eq!(r("Hi {{first_name}}!"), "Hi ana!");
        assert_eq!(r("{{ name | title }}"), "Ana Costa");
        assert_eq!(r("{{username|upper}}"), "ANA.C");
        assert_eq!(r("{{field.plan|lower}}"), "gold");
        assert_eq!(r("{{field.missing|friend}}"), "friend");
        assert_eq!(r("{{field.missing|\"upper\"}}"), "upper");
        assert_eq!(r("{{field.missing}}x"), "x");
        assert_eq!(r("{{name|truncate(3)|upper}}"), "ANA");
        assert_eq!(r("{{keyword}}"), "link");
        assert_eq!(r("a \\{b\\} \\| c} \\\\"), "a {b} | c} \\");
        let empty = Vars::default();
        assert_eq!(
            Template::parse("Hi {{first_name|there}}")
                .unwrap()
                .render(&empty, 0),
            "Hi there"
        );
        assert_eq!(
            Template::parse("{{first_name|upper|there}}")
                .unwrap()
                .render(&empty, 0),
            "THERE"
        );
    }

    #[test]
    fn upper_expansion_and_truncate_count_characters() {
        let fields: BTreeMap<_, _> = [("w".into(), "straße".into())].into_iter().collect();
        let v = vars(&fields);
        assert_eq!(
            Template::parse("{{field.w|upper}}").unwrap().render(&v, 0),
            "STRASSE"
        );
        assert_eq!(
            Template::parse("{{field.w|truncate(5)}}")
                .unwrap()
                .render(&v, 0),
            "straß"
        );
    }

    #[test]
    fn spins_are_seeded() {
        let t = Template::parse("{a|b|c}").unwrap();
        let v = Vars::default();
        let seen: std::collections::BTreeSet<String> = (0..64).map(|s| t.render(&v, s)).collect();
        assert_eq!(seen.len(), 3);
        assert_eq!(t.render(&v, 42), t.render(&v, 42));
        assert_eq!(Template::parse("x{|!}").unwrap().worst_case(), (2, 2));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let cases = [
            ("Hi {{first_nme}}", (1, 6), "unknown variable"),
            ("line1\n  {{name", (2, 3), "not closed"),
            ("{a|b", (1, 1), "not closed"),
            ("{a|{{name}}}", (1, 4), "cannot contain"),
            ("{{}}", (1, 3), "missing"),
            ("{{name|}}", (1, 8), "empty filter"),
            ("{{name|truncate(x)}}", (1, 8), "whole number"),
            ("{{name|a|b}}", (1, 10), "only one fallback"),
            ("{{field.}}", (1, 3), "unknown variable"),
            ("{{name { }}", (1, 8), "inside"),
        ];
        for (src, pos, msg) in cases {
            let e = Template::parse(src).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidTemplate);
            assert_eq!(e.position(), Some(pos), "{src}: {e}");
            assert!(e.message().contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn worst_case_limits() {
        let ok = format!("{}{{{{field.a|truncate(10)}}}}", "x".repeat(960));
        Template::parse_with_limit(&ok, TextLimit::MESSAGE).unwrap();
        let e =
            Template::parse_with_limit("{{field.a}} {{field.b}}", TextLimit::MESSAGE).unwrap_err();
        assert_eq!(e.position(), Some((1, 13)), "{e}");
        assert!(e.message().contains("1601 bytes"), "{e}");
        let long = "é".repeat(501);
        assert!(Template::parse_with_limit(&long, TextLimit::MESSAGE).is_err());
        assert!(Template::parse_with_limit(&"é".repeat(500), TextLimit::MESSAGE).is_ok());
        assert!(Template::parse_with_limit("{{first_name}}", TextLimit::Chars(20)).is_err());
        assert!(
            Template::parse_with_limit("{{first_name|truncate(20)}}", TextLimit::Chars(20)).is_ok()
        );
        assert_eq!(
            Template::parse("{{username|upper}}").unwrap().worst_case(),
            (90, 90)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_render_respects_worst_case(src in "[a-z{}|\\\\\" .()0-9]{0,40}", name in "\\PC{0,80}") {
            if let Ok(t) = Template::parse(&src) {
                let fields = BTreeMap::new();
                let v = Vars { first_name: Some(&name), name: Some(&name), username: Some("user"), keyword: None, fields: Some(&fields) };
                let truncated: String = name.chars().take(MAX_FIRST_NAME_CHARS).collect();
                let v2 = Vars { first_name: Some(&truncated), name: Some(&truncated), ..v };
                let out = t.render(&v2, 3);
                let (wc, wb) = t.worst_case();
                prop_assert!(out.len() <= wb && out.chars().count() <= wc);
                let _ = t.render(&v, 3);
            }
        }

        #[test]
        fn plain_text_round_trips(s in "[^{}\\\\]{0,100}") {
            let t = Template::parse(&s).unwrap();
            prop_assert_eq!(t.render(&Vars::default(), 0), s);
        }
    }
}
