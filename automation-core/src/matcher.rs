//! The compiled rule set: a per-account keyword index.
//!
//! [`RuleSet`] indexes rules by account. Inside an account, every keyword, phrase and exclusion of
//! every rule is normalized ([`crate::normalize`]) and deduplicated into one index with two parts:
//!
//! * keywords written with spaces between words (Latin, Cyrillic, Arabic, Hangul, emoji, ...) go
//!   into a hash table of whole phrases, looked up once per run of up to `max words` words of the
//!   text;
//! * keywords containing characters of scripts written without spaces (Han, Kana, Thai, ...) go
//!   into an Aho-Corasick automaton (`aho-corasick`), run once over the text.
//!
//! Matching an event therefore costs one pass over its normalized text plus the matches found,
//! not a loop over rules. Rules without keywords (`any` and `regex` modes) are kept in a short
//! per-account list and checked one by one; keep regex rules few.
//!
//! # Word boundaries
//!
//! A keyword matches at a position of the normalized text when it starts at the beginning or
//! after a space, and ends at the end or before a space. Next to a character of a script written
//! without spaces (Han, Kana, Thai, Lao, Khmer, Myanmar, Tibetan) every position is a boundary, so
//! such keywords match as substrings.
//!
//! | Mode | Matches when |
//! |---|---|
//! | `exact` | the whole normalized text equals a keyword |
//! | `starts_with` | a keyword matches at the start, ending on a boundary |
//! | `contains` | a keyword matches anywhere on boundaries |
//! | `regex` | the pattern matches the original text |
//! | `any` | always |
//!
//! Exclusions veto a rule when any of them matches as in `contains`.
//!
//! # Conflicts
//!
//! Candidates are ordered by **priority** (higher first), then **specificity** (mode `exact` >
//! `starts_with` > `contains` > `regex` > `any`, then the longer matched keyword, in
//! characters), then **age** (older `created_at` first; rules without `created_at` after dated ones,
//! in the order they were added). The order is total, so the decision is deterministic.
//!
//! # Incremental updates
//!
//! Each account has a large *base* index and a small *delta* index. [`RuleSet::insert`]
//! adds to the delta (rebuilding only the delta, at most [`DELTA_MAX_RULES`] rules);
//! [`RuleSet::remove`] marks the rule dead (no rebuild). When the delta is full, or when a quarter
//! of the base is dead, the account is compacted: its base is rebuilt from all live rules (about
//! 100 ms for 100,000 rules in `benches/automation.rs`, against about 2 µs for one insertion and
//! removal), once per [`DELTA_MAX_RULES`] insertions; [`RuleSet::compact`] does it on demand.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use aho_corasick::{AhoCorasick, MatchKind};
use chrono::{DateTime, Utc};
use regex::Regex;

use crate::error::{Error, ErrorKind};
use crate::event::{EventKind, InboundEvent, MediaKind};
use crate::flow::{CompiledFlow, Flow};
use crate::normalize::{is_unspaced_script, normalize, normalize_into};
use crate::rule::{
    Action, Button, Condition, FieldOp, MatchMode, Message, Rule, Scope, TriggerKind,
};
use crate::template::{Template, TextLimit};

/// The most rules a delta index holds before the account is compacted.
pub const DELTA_MAX_RULES: usize = 512;

/// Maximum length of one keyword, in characters after normalization.
pub const MAX_KEYWORD_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UseKind {
    Exact,
    StartsWith,
    Contains,
    Exclude,
}

#[derive(Debug, Clone, Copy)]
struct Use {
    slot: u32,
    kind: UseKind,
    keyword: u32,
}

/// A fast non-cryptographic hasher (the Fx hash) for the phrase table.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(c);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// One index segment: keywords of spaced scripts in a phrase table looked up per word run,
/// keywords containing characters of unspaced scripts in an Aho-Corasick automaton, and per
/// pattern the rules using it.
#[derive(Debug, Default)]
struct Segment {
    /// Spaced keywords (whole words and phrases) -> pattern id.
    phrases: HashMap<Box<str>, u32, FxBuild>,
    /// A one-hash Bloom filter over `phrases` (fits in cache; skips most table probes).
    filter: Vec<u64>,
    /// The most words in a spaced keyword.
    max_words: usize,
    /// The longest spaced keyword, in bytes.
    max_phrase_bytes: usize,
    /// Keywords with unspaced-script characters.
    ac: Option<AhoCorasick>,
    /// Automaton pattern index -> pattern id.
    ac_ids: Vec<u32>,
    /// `uses[starts[p]..starts[p+1]]` are the uses of pattern `p`.
    starts: Vec<u32>,
    uses: Vec<Use>,
    /// Pattern lengths in characters.
    pattern_chars: Vec<u32>,
    slots: Vec<u32>,
}

impl Segment {
    fn build(rules: &[Option<CompiledRule>], slots: Vec<u32>) -> Segment {
        let total: usize = slots
            .iter()
            .filter_map(|&s| rules.get(s as usize).and_then(Option::as_ref))
            .map(|r| r.keywords.len() + r.exclude.len())
            .sum();
        let mut phrases: HashMap<Box<str>, u32, FxBuild> =
            HashMap::with_capacity_and_hasher(total, FxBuild::default());
        let mut unspaced: HashMap<&str, u32, FxBuild> = HashMap::default();
        let mut ac_patterns: Vec<&str> = Vec::new();
        let mut ac_ids: Vec<u32> = Vec::new();
        let mut pattern_chars: Vec<u32> = Vec::with_capacity(total);
        let mut per_pattern: Vec<(u32, Use)> = Vec::with_capacity(total);
        let (mut max_words, mut max_phrase_bytes) = (0usize, 0usize);
        for &slot in &slots {
            let Some(rule) = rules.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            let kind = match rule.rule.matcher.mode {
                MatchMode::Exact => UseKind::Exact,
                MatchMode::StartsWith => UseKind::StartsWith,
                MatchMode::Contains | MatchMode::Any | MatchMode::Regex => UseKind::Contains,
            };
            let keyword_lists = [(kind, &rule.keywords), (UseKind::Exclude, &rule.exclude)];
            for (kind, list) in keyword_lists {
                for (i, kw) in list.iter().enumerate() {
                    let next = pattern_chars.len() as u32;
                    let id = if kw.chars().any(is_unspaced_script) {
                        *unspaced.entry(kw.as_str()).or_insert_with(|| {
                            ac_patterns.push(kw.as_str());
                            ac_ids.push(next);
                            pattern_chars.push(kw.chars().count() as u32);
                            next
                        })
                    } else {
                        match phrases.get(kw.as_str()) {
                            Some(&id) => id,
                            None => {
                                phrases.insert(kw.as_str().into(), next);
                                pattern_chars.push(kw.chars().count() as u32);
                                max_words =
                                    max_words.max(kw.bytes().filter(|&b| b == b' ').count() + 1);
                                max_phrase_bytes = max_phrase_bytes.max(kw.len());
                                next
                            }
                        }
                    };
                    per_pattern.push((
                        id,
                        Use {
                            slot,
                            kind,
                            keyword: i as u32,
                        },
                    ));
                }
            }
        }
        per_pattern.sort_unstable_by_key(|(p, u)| (*p, u.slot));
        let mut starts = Vec::with_capacity(pattern_chars.len() + 1);
        let mut uses = Vec::with_capacity(per_pattern.len());
        let mut next = 0usize;
        for p in 0..pattern_chars.len() as u32 {
            starts.push(uses.len() as u32);
            while next < per_pattern.len() && per_pattern[next].0 == p {
                uses.push(per_pattern[next].1);
                next += 1;
            }
        }
        starts.push(uses.len() as u32);
        let bits = (phrases.len() * 16)
            .next_power_of_two()
            .clamp(4096, 1 << 21);
        let mut filter = vec![0u64; bits / 64];
        for k in phrases.keys() {
            let h = k.split(' ').fold(0, |h, w| combine(h, word_hash(w)));
            let bit = filter_bit(h, bits);
            filter[bit / 64] |= 1 << (bit % 64);
        }
        let ac = if ac_patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&ac_patterns)
                .ok()
        };
        Segment {
            phrases,
            filter,
            max_words,
            max_phrase_bytes,
            ac,
            ac_ids,
            starts,
            uses,
            pattern_chars,
            slots,
        }
    }

    fn emit(
        &self,
        p: u32,
        s: usize,
        e: usize,
        len: usize,
        hits: &mut Vec<Hit>,
        excluded: &mut Vec<u32>,
    ) {
        let p = p as usize;
        let (Some(&a), Some(&b)) = (self.starts.get(p), self.starts.get(p + 1)) else {
            return;
        };
        let chars = self.pattern_chars.get(p).copied().unwrap_or(0);
        for u in self.uses.get(a as usize..b as usize).unwrap_or(&[]) {
            let rank = match u.kind {
                UseKind::Exclude => {
                    excluded.push(u.slot);
                    continue;
                }
                UseKind::Exact if s == 0 && e == len => RANK_EXACT,
                UseKind::StartsWith if s == 0 => RANK_STARTS_WITH,
                UseKind::Contains => RANK_CONTAINS,
                _ => continue,
            };
            hits.push(Hit {
                slot: u.slot,
                specificity: specificity(rank, chars),
                keyword: Some(u.keyword),
            });
        }
    }

    fn scan(&self, text: &str, hits: &mut Vec<Hit>, excluded: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let Some((first, last)) = self.scan_phrases(text, hits, excluded) else {
            return;
        };
        if let Some(ac) = &self.ac {
            // every match contains an unspaced character: search only around them
            let reach = ac.max_pattern_len();
            let mut a = first.saturating_sub(reach);
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            let mut b = last.saturating_add(reach).min(len);
            while !text.is_char_boundary(b) {
                b += 1;
            }
            let input = aho_corasick::Input::new(text).range(a..b);
            for m in ac.find_overlapping_iter(input) {
                let (s, e) = (m.start(), m.end());
                let start_ok = s == 0
                    || bytes[s - 1] == b' '
                    || unspaced_before(text, s)
                    || unspaced_after(text, s);
                let end_ok = e == len
                    || bytes[e] == b' '
                    || unspaced_after(text, e)
                    || unspaced_before(text, e);
                if start_ok && end_ok {
                    if let Some(&p) = self.ac_ids.get(m.pattern().as_usize()) {
                        self.emit(p, s, e, len, hits, excluded);
                    }
                }
            }
        }
    }

    /// Looks up every phrase of up to `max_words` words; returns the byte range from the first
    /// character of an unspaced script to the end of the last one, if there are any.
    fn scan_phrases(
        &self,
        text: &str,
        hits: &mut Vec<Hit>,
        excluded: &mut Vec<u32>,
    ) -> Option<(usize, usize)> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let mut unspaced_range: Option<(usize, usize)> = None;
        if self.phrases.is_empty() {
            let first = text.char_indices().find(|(_, c)| is_unspaced_script(*c))?;
            let last = text
                .char_indices()
                .rev()
                .find(|(_, c)| is_unspaced_script(*c))?;
            return Some((first.0, last.0 + last.1.len_utf8()));
        }
        // Word runs: maximal runs of characters that are neither spaces nor unspaced-script
        // characters. A phrase is a chain of runs joined by single spaces.
        // (start, combined hash of the words from start to the current run)
        let mut chain: Vec<(usize, u64)> = Vec::with_capacity(self.max_words);
        let bits = self.filter.len() * 64;
        let mut run_start: Option<usize> = None;
        let mut prev_end: Option<usize> = None;
        let mut i = 0usize;
        loop {
            // classify the character at `i` (bytes below 0x80 need no decoding)
            let (at, c) = if i >= len {
                (len, None)
            } else if bytes[i] < 0x80 {
                i += 1;
                (i - 1, Some(bytes[i - 1] as char))
            } else {
                let c = text.get(i..).and_then(|t| t.chars().next()).unwrap_or(' ');
                i += c.len_utf8();
                (i - c.len_utf8(), Some(c))
            };
            let unspaced = c.is_some_and(is_unspaced_script);
            if unspaced {
                let end = at + c.map_or(0, char::len_utf8);
                unspaced_range = Some(unspaced_range.map_or((at, end), |(f, _)| (f, end)));
            }
            let in_word = c.is_some_and(|c| c != ' ') && !unspaced;
            match (run_start, in_word) {
                (None, true) => run_start = Some(at),
                (Some(s), false) => {
                    run_start = None;
                    let joined =
                        prev_end.is_some_and(|pe| pe + 1 == s && bytes.get(pe) == Some(&b' '));
                    if !joined {
                        chain.clear();
                    }
                    if chain.len() == self.max_words {
                        chain.remove(0);
                    }
                    chain.push((s, 0));
                    let w = word_hash(text.get(s..at).unwrap_or(""));
                    for (start, h) in &mut chain {
                        *h = combine(*h, w);
                        if at - *start > self.max_phrase_bytes {
                            continue;
                        }
                        let bit = filter_bit(*h, bits);
                        if self
                            .filter
                            .get(bit / 64)
                            .is_none_or(|f| f & (1 << (bit % 64)) == 0)
                        {
                            continue;
                        }
                        let Some(k) = text.get(*start..at) else {
                            continue;
                        };
                        if let Some(&p) = self.phrases.get(k) {
                            self.emit(p, *start, at, len, hits, excluded);
                        }
                    }
                    prev_end = Some(at);
                }
                _ => {}
            }
            if c.is_none() {
                break;
            }
        }
        unspaced_range
    }
}

/// The hash of one word, for the phrase filter.
#[inline]
fn word_hash(w: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(w.as_bytes());
    h.finish()
}

/// Appends a word hash to a phrase hash.
#[inline]
fn combine(h: u64, w: u64) -> u64 {
    (h.rotate_left(23) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline]
fn filter_bit(h: u64, bits: usize) -> usize {
    ((h >> 17) as usize) & (bits - 1)
}

fn unspaced_before(text: &str, at: usize) -> bool {
    text.get(..at)
        .and_then(|s| s.chars().next_back())
        .is_some_and(is_unspaced_script)
}

fn unspaced_after(text: &str, at: usize) -> bool {
    text.get(at..)
        .and_then(|s| s.chars().next())
        .is_some_and(is_unspaced_script)
}

const RANK_ANY: u32 = 0;
const RANK_REGEX: u32 = 1;
const RANK_CONTAINS: u32 = 2;
const RANK_STARTS_WITH: u32 = 3;
const RANK_EXACT: u32 = 4;

fn specificity(rank: u32, chars: u32) -> u32 {
    (rank << 24) | chars.min(0x00FF_FFFF)
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    slot: u32,
    specificity: u32,
    keyword: Option<u32>,
}

/// A rule that matched an event, before conditions and limits.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The rule.
    pub rule: &'a Rule,
    /// The match mode that matched.
    pub mode: MatchMode,
    /// The keyword that matched (as written in the rule), if any.
    pub keyword: Option<&'a str>,
    /// The specificity used for conflict resolution (mode rank << 24 | keyword characters).
    pub specificity: u32,
    pub(crate) slot: u32,
}

#[derive(Debug, Default)]
struct AccountIndex {
    base: Segment,
    delta: Segment,
    /// Rules without keywords (any, regex).
    others: Vec<u32>,
    dead_in_base: usize,
}

/// A compiled, validated rule.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) rule: Rule,
    pub(crate) keywords: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) regex: Option<Regex>,
    pub(crate) triggers: u16,
    pub(crate) actions: Vec<CompiledAction>,
    age: (i64, u64),
}

/// An action with its templates parsed.
#[derive(Debug)]
pub(crate) enum CompiledAction {
    PrivateReply(Template),
    PublicReply(Vec<Template>),
    SendDm(CompiledMessage),
    AddTag(String),
    RemoveTag(String),
    SetField(String, Template),
    StartFlow(String),
    HandOff(crate::rule::Seconds, Option<String>),
    Webhook(String),
    AiReply {
        instructions: Template,
        fallback: Template,
        context_messages: u32,
    },
}

/// A message with its templates parsed.
#[derive(Debug)]
pub(crate) enum CompiledMessage {
    Text(Template, Vec<(Template, String)>),
    Buttons(Template, Vec<(Template, Button)>),
    Generic(Vec<(Template, Option<Template>, crate::rule::Element)>),
    Media(Message),
}

pub(crate) fn compile_message(message: &Message) -> Result<CompiledMessage, Error> {
    let t = |s: &str, limit, field: String| {
        Template::parse_with_limit(s, limit).map_err(|e| e.in_field(field))
    };
    Ok(match message {
        Message::Text {
            text,
            quick_replies,
        } => {
            if quick_replies.len() > 13 {
                return Err(Error::new(
                    ErrorKind::InvalidRule,
                    format!(
                        "{} quick replies; Instagram allows at most 13",
                        quick_replies.len()
                    ),
                )
                .in_field("quick_replies"));
            }
            let mut qrs = Vec::new();
            for (i, q) in quick_replies.iter().enumerate() {
                if q.payload.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidRule,
                        "a quick reply needs a payload",
                    )
                    .in_field(format!("quick_replies[{i}].payload")));
                }
                qrs.push((
                    t(
                        &q.title,
                        TextLimit::Chars(20),
                        format!("quick_replies[{i}].title"),
                    )?,
                    q.payload.clone(),
                ));
            }
            CompiledMessage::Text(t(text, TextLimit::MESSAGE, "text".into())?, qrs)
        }
        Message::Buttons { text, buttons } => {
            if buttons.is_empty() || buttons.len() > 3 {
                return Err(Error::new(
                    ErrorKind::InvalidRule,
                    format!("{} buttons; a button template needs 1 to 3", buttons.len()),
                )
                .in_field("buttons"));
            }
            let text = t(text, TextLimit::Chars(640), "text".into())?;
            CompiledMessage::Buttons(text, compile_buttons(buttons, "buttons")?)
        }
        Message::Generic { elements } => {
            if elements.is_empty() || elements.len() > 10 {
                return Err(Error::new(
                    ErrorKind::InvalidRule,
                    format!(
                        "{} elements; a generic template needs 1 to 10",
                        elements.len()
                    ),
                )
                .in_field("elements"));
            }
            let mut out = Vec::new();
            for (i, el) in elements.iter().enumerate() {
                if el.buttons.len() > 3 {
                    return Err(Error::new(
                        ErrorKind::InvalidRule,
                        "at most 3 buttons per element",
                    )
                    .in_field(format!("elements[{i}].buttons")));
                }
                compile_buttons(&el.buttons, &format!("elements[{i}].buttons"))?;
                let title = t(
                    &el.title,
                    TextLimit::Chars(80),
                    format!("elements[{i}].title"),
                )?;
                let subtitle = el
                    .subtitle
                    .as_deref()
                    .map(|s| t(s, TextLimit::Chars(80), format!("elements[{i}].subtitle")))
                    .transpose()?;
                out.push((title, subtitle, el.clone()));
            }
            CompiledMessage::Generic(out)
        }
        Message::Media { url, .. } => {
            check_url(url).map_err(|e| e.in_field("url"))?;
            CompiledMessage::Media(message.clone())
        }
    })
}

fn compile_buttons(buttons: &[Button], field: &str) -> Result<Vec<(Template, Button)>, Error> {
    let mut out = Vec::new();
    for (i, b) in buttons.iter().enumerate() {
        let title = match b {
            Button::WebUrl { title, url } => {
                check_url(url).map_err(|e| e.in_field(format!("{field}[{i}].url")))?;
                title
            }
            Button::Postback { title, payload } => {
                if payload.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidRule,
                        "a postback button needs a payload",
                    )
                    .in_field(format!("{field}[{i}].payload")));
                }
                title
            }
        };
        let t = Template::parse_with_limit(title, TextLimit::Chars(20))
            .map_err(|e| e.in_field(format!("{field}[{i}].title")))?;
        out.push((t, b.clone()));
    }
    Ok(out)
}

pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidRule,
            format!("`{url}` is not an http(s) URL"),
        ))
    }
}

pub(crate) fn check_condition(c: &Condition) -> Result<(), Error> {
    if let Condition::Field { op, value, .. } = c {
        if value.is_none() && !matches!(op, FieldOp::Exists | FieldOp::Missing | FieldOp::Ne) {
            return Err(Error::new(
                ErrorKind::InvalidRule,
                format!("the `{op:?}` comparison needs a `value`").to_lowercase(),
            ));
        }
    }
    Ok(())
}

impl CompiledRule {
    fn new(rule: Rule, seq: u64) -> Result<CompiledRule, Error> {
        let (keywords, exclude, regex, actions) =
            Self::check(&rule).map_err(|e| e.in_rule(rule.id.clone()))?;
        let triggers = if rule.on.is_empty() {
            TriggerKind::Comment.bit() | TriggerKind::Message.bit()
        } else {
            rule.on.iter().fold(0u16, |m, t| m | t.bit())
        };
        let age = (
            rule.created_at.map_or(i64::MAX, |t| t.timestamp_micros()),
            seq,
        );
        Ok(CompiledRule {
            rule,
            keywords,
            exclude,
            regex,
            triggers,
            actions,
            age,
        })
    }

    #[allow(clippy::type_complexity)]
    fn check(
        rule: &Rule,
    ) -> Result<(Vec<String>, Vec<String>, Option<Regex>, Vec<CompiledAction>), Error> {
        let invalid = |m: String| Error::new(ErrorKind::InvalidRule, m);
        if rule.id.trim().is_empty() {
            return Err(invalid("a rule needs a non-empty `id`".into()));
        }
        if rule.account.trim().is_empty() {
            return Err(invalid(
                "the rule has no account; set `account` on the rule or at the top of the file"
                    .into(),
            ));
        }
        let norm = |list: &[String], field: &str| -> Result<Vec<String>, Error> {
            let mut out = Vec::with_capacity(list.len());
            for (i, kw) in list.iter().enumerate() {
                let n = normalize(kw);
                if n.is_empty() {
                    return Err(invalid(format!(
                        "keyword `{kw}` has no letters, digits or emoji; it would match nothing"
                    ))
                    .in_field(format!("{field}[{i}]")));
                }
                if n.chars().count() > MAX_KEYWORD_CHARS {
                    return Err(invalid(format!(
                        "keyword is longer than {MAX_KEYWORD_CHARS} characters"
                    ))
                    .in_field(format!("{field}[{i}]")));
                }
                out.push(n);
            }
            Ok(out)
        };
        let mut regex = None;
        let keywords = match rule.matcher.mode {
            MatchMode::Exact | MatchMode::Contains | MatchMode::StartsWith => {
                if rule.matcher.keywords.is_empty() {
                    return Err(invalid(format!(
                        "match mode `{}` needs at least one keyword",
                        mode_name(rule.matcher.mode)
                    ))
                    .in_field("match.keywords"));
                }
                norm(&rule.matcher.keywords, "match.keywords")?
            }
            MatchMode::Regex => {
                let Some(p) = &rule.matcher.pattern else {
                    return Err(invalid("match mode `regex` needs a `pattern`".into())
                        .in_field("match.pattern"));
                };
                let r = regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        invalid(format!("bad regular expression: {e}")).in_field("match.pattern")
                    })?;
                regex = Some(r);
                Vec::new()
            }
            MatchMode::Any => Vec::new(),
        };
        let exclude = norm(&rule.exclude, "exclude")?;
        for (i, c) in rule.conditions.iter().enumerate() {
            check_condition(c).map_err(|e| e.in_field(format!("conditions[{i}]")))?;
        }
        if let Some(w) = &rule.active {
            if let (Some(f), Some(u)) = (w.from, w.until) {
                if f >= u {
                    return Err(invalid("the active window ends before it starts".into())
                        .in_field("active"));
                }
            }
        }
        let mut actions = Vec::with_capacity(rule.actions.len());
        for (i, a) in rule.actions.iter().enumerate() {
            actions.push(compile_action(a).map_err(|e| e.in_field(format!("actions[{i}]")))?);
        }
        Ok((keywords, exclude, regex, actions))
    }

    fn has_keywords(&self) -> bool {
        !self.keywords.is_empty() || !self.exclude.is_empty()
    }
}

fn mode_name(m: MatchMode) -> &'static str {
    match m {
        MatchMode::Any => "any",
        MatchMode::Exact => "exact",
        MatchMode::Contains => "contains",
        MatchMode::StartsWith => "starts_with",
        MatchMode::Regex => "regex",
    }
}

fn compile_action(a: &Action) -> Result<CompiledAction, Error> {
    let invalid = |m: &str| Error::new(ErrorKind::InvalidRule, m.to_string());
    Ok(match a {
        Action::PrivateReply { text } => CompiledAction::PrivateReply(
            Template::parse_with_limit(text, TextLimit::MESSAGE).map_err(|e| e.in_field("text"))?,
        ),
        Action::PublicReply { variants } => {
            if variants.is_empty() {
                return Err(
                    invalid("a public reply needs at least one variant").in_field("variants")
                );
            }
            let mut out = Vec::new();
            for (i, v) in variants.iter().enumerate() {
                out.push(
                    Template::parse_with_limit(v, TextLimit::Chars(2200))
                        .map_err(|e| e.in_field(format!("variants[{i}]")))?,
                );
            }
            CompiledAction::PublicReply(out)
        }
        Action::SendDm { message } => {
            CompiledAction::SendDm(compile_message(message).map_err(|e| e.in_field("message"))?)
        }
        Action::AddTag { tag } | Action::RemoveTag { tag } if tag.trim().is_empty() => {
            return Err(invalid("the tag is empty").in_field("tag"))
        }
        Action::AddTag { tag } => CompiledAction::AddTag(tag.clone()),
        Action::RemoveTag { tag } => CompiledAction::RemoveTag(tag.clone()),
        Action::SetField { name, value } => {
            if name.trim().is_empty() {
                return Err(invalid("the field name is empty").in_field("name"));
            }
            CompiledAction::SetField(
                name.clone(),
                Template::parse(value).map_err(|e| e.in_field("value"))?,
            )
        }
        Action::StartFlow { flow } => CompiledAction::StartFlow(flow.clone()),
        Action::HandOff { pause, note } => {
            if pause.0 == 0 {
                return Err(invalid("a hand-off needs a pause longer than zero").in_field("pause"));
            }
            CompiledAction::HandOff(*pause, note.clone())
        }
        Action::Webhook { url } => {
            check_url(url).map_err(|e| e.in_field("url"))?;
            CompiledAction::Webhook(url.clone())
        }
        Action::AiReply {
            instructions,
            fallback,
            context_messages,
        } => {
            if instructions.trim().is_empty() {
                return Err(invalid(
                    "the instructions are empty; say what the model should do (the system prompt)",
                )
                .in_field("instructions"));
            }
            if fallback.trim().is_empty() {
                return Err(invalid(
                    "the fallback is empty; give the text sent when the model does not answer",
                )
                .in_field("fallback"));
            }
            if !(1..=crate::rule::MAX_CONTEXT_MESSAGES).contains(context_messages) {
                return Err(invalid(&format!(
                    "context_messages is {context_messages}; give 1 to {}",
                    crate::rule::MAX_CONTEXT_MESSAGES
                ))
                .in_field("context_messages"));
            }
            CompiledAction::AiReply {
                instructions: Template::parse_with_limit(instructions, TextLimit::Chars(4000))
                    .map_err(|e| e.in_field("instructions"))?,
                fallback: Template::parse_with_limit(fallback, TextLimit::MESSAGE)
                    .map_err(|e| e.in_field("fallback"))?,
                context_messages: *context_messages,
            }
        }
    })
}

/// A compiled set of rules and flows, indexed per account.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Option<CompiledRule>>,
    by_id: HashMap<String, u32, FxBuild>,
    accounts: HashMap<String, AccountIndex>,
    flows: HashMap<(String, String), CompiledFlow>,
    seq: u64,
    live: usize,
}

impl RuleSet {
    /// An empty rule set.
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// Compiles rules and flows. Fails on the first invalid rule or flow (see [`RuleSet::check`]
    /// to collect every error); rule ids must be unique.
    pub fn compile(
        rules: impl IntoIterator<Item = Rule>,
        flows: impl IntoIterator<Item = Flow>,
    ) -> Result<RuleSet, Error> {
        let (set, mut errors) =
            Self::compile_all(rules.into_iter().collect(), flows.into_iter().collect());
        match errors.is_empty() {
            true => Ok(set),
            false => Err(errors.swap_remove(0)),
        }
    }

    /// Compiles a parsed rules file.
    pub fn from_file(file: crate::rule::RulesFile) -> Result<RuleSet, Error> {
        Self::compile(file.rules, file.flows)
    }

    /// Validates a rules file and returns every error found (empty when it is valid).
    pub fn check(file: &crate::rule::RulesFile) -> Vec<Error> {
        Self::compile_all(file.rules.clone(), file.flows.clone()).1
    }

    fn compile_all(rules: Vec<Rule>, flows: Vec<Flow>) -> (RuleSet, Vec<Error>) {
        let mut set = RuleSet::new();
        let mut errors = Vec::new();
        for flow in flows {
            if let Err(e) = set.insert_flow(flow) {
                errors.push(e);
            }
        }
        let mut per_account: HashMap<String, Vec<u32>> = HashMap::new();
        set.rules.reserve(rules.len());
        set.by_id.reserve(rules.len());
        for rule in rules {
            if set.by_id.contains_key(&rule.id) {
                errors.push(
                    Error::new(
                        ErrorKind::InvalidRule,
                        "two rules have this id; ids must be unique",
                    )
                    .in_rule(rule.id),
                );
                continue;
            }
            match set
                .validate_refs(&rule)
                .and_then(|()| CompiledRule::new(rule, set.seq))
            {
                Ok(c) => {
                    set.seq += 1;
                    let slot = set.rules.len() as u32;
                    let account = &c.rule.account;
                    if !set.accounts.contains_key(account) {
                        set.accounts
                            .insert(account.clone(), AccountIndex::default());
                    }
                    if c.keywords.is_empty() {
                        if let Some(entry) = set.accounts.get_mut(account) {
                            entry.others.push(slot);
                        }
                    }
                    if c.has_keywords() {
                        match per_account.get_mut(account) {
                            Some(v) => v.push(slot),
                            None => {
                                per_account.insert(account.clone(), vec![slot]);
                            }
                        }
                    }
                    set.by_id.insert(c.rule.id.clone(), slot);
                    set.rules.push(Some(c));
                    set.live += 1;
                }
                Err(e) => errors.push(e),
            }
        }
        for (account, slots) in per_account {
            let base = Segment::build(&set.rules, slots);
            if let Some(idx) = set.accounts.get_mut(&account) {
                idx.base = base;
            }
        }
        (set, errors)
    }

    fn validate_refs(&self, rule: &Rule) -> Result<(), Error> {
        for (i, a) in rule.actions.iter().enumerate() {
            if let Action::StartFlow { flow } = a {
                if !self
                    .flows
                    .contains_key(&(rule.account.clone(), flow.clone()))
                {
                    return Err(Error::new(
                        ErrorKind::InvalidRule,
                        format!("unknown flow `{flow}`; define it for this account first"),
                    )
                    .in_field(format!("actions[{i}].flow"))
                    .in_rule(rule.id.clone()));
                }
            }
        }
        Ok(())
    }

    /// Adds or replaces a rule (by id). Only the account's small delta index is rebuilt.
    pub fn insert(&mut self, rule: Rule) -> Result<(), Error> {
        self.validate_refs(&rule)?;
        let compiled = CompiledRule::new(rule, self.seq)?;
        self.seq += 1;
        self.remove(&compiled.rule.id);
        let slot = self.rules.len() as u32;
        let account = compiled.rule.account.clone();
        let no_keywords = compiled.keywords.is_empty();
        let has_kw = compiled.has_keywords();
        self.by_id.insert(compiled.rule.id.clone(), slot);
        self.rules.push(Some(compiled));
        self.live += 1;
        let idx = self.accounts.entry(account.clone()).or_default();
        if no_keywords {
            idx.others.push(slot);
        }
        if has_kw {
            let mut slots = std::mem::take(&mut idx.delta.slots);
            slots.push(slot);
            if slots.len() > DELTA_MAX_RULES {
                idx.delta.slots = slots;
                self.compact_account(&account);
            } else {
                idx.delta = Segment::build(&self.rules, slots);
            }
        }
        Ok(())
    }

    /// Removes a rule by id and returns it. No index is rebuilt unless a quarter of the
    /// account's base index is dead.
    pub fn remove(&mut self, id: &str) -> Option<Rule> {
        let slot = self.by_id.remove(id)?;
        let compiled = self.rules.get_mut(slot as usize)?.take()?;
        self.live -= 1;
        let account = compiled.rule.account.clone();
        let mut compact = false;
        if let Some(idx) = self.accounts.get_mut(&account) {
            idx.others.retain(|&s| s != slot);
            if let Some(pos) = idx.delta.slots.iter().position(|&s| s == slot) {
                let mut slots = std::mem::take(&mut idx.delta.slots);
                slots.remove(pos);
                idx.delta = Segment::build(&self.rules, slots);
            } else if compiled.has_keywords() {
                idx.dead_in_base += 1;
                compact = idx.dead_in_base * 4 > idx.base.slots.len().max(64);
            }
        }
        if compact {
            self.compact_account(&account);
        }
        Some(compiled.rule)
    }

    /// Rebuilds every account's base index from its live rules and empties the deltas.
    pub fn compact(&mut self) {
        let accounts: Vec<String> = self.accounts.keys().cloned().collect();
        for a in accounts {
            self.compact_account(&a);
        }
    }

    fn compact_account(&mut self, account: &str) {
        let Some(idx) = self.accounts.get_mut(account) else {
            return;
        };
        let mut slots: Vec<u32> = std::mem::take(&mut idx.base.slots);
        slots.append(&mut std::mem::take(&mut idx.delta.slots));
        let rules = &self.rules;
        slots.retain(|&s| rules.get(s as usize).is_some_and(Option::is_some));
        slots.sort_unstable();
        idx.base = Segment::build(&self.rules, slots);
        idx.delta = Segment::default();
        idx.dead_in_base = 0;
    }

    /// Adds or replaces a flow (by account and id).
    pub fn insert_flow(&mut self, flow: Flow) -> Result<(), Error> {
        let compiled = CompiledFlow::new(flow)?;
        self.flows.insert(
            (compiled.flow.account.clone(), compiled.flow.id.clone()),
            compiled,
        );
        Ok(())
    }

    /// Approximate heap bytes of the keyword indexes (not counting the
    /// rules themselves).
    pub fn index_memory(&self) -> usize {
        self.accounts
            .values()
            .flat_map(|a| [&a.base, &a.delta])
            .map(|s| {
                s.ac.as_ref().map_or(0, AhoCorasick::memory_usage)
                    + s.phrases.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
                    + s.phrases.keys().map(|k| k.len()).sum::<usize>()
                    + s.ac_ids.capacity() * 4
                    + s.starts.capacity() * 4
                    + s.uses.capacity() * std::mem::size_of::<Use>()
                    + s.pattern_chars.capacity() * 4
                    + s.slots.capacity() * 4
            })
            .sum()
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// A rule by id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.compiled(id).map(|c| &c.rule)
    }

    pub(crate) fn compiled(&self, id: &str) -> Option<&CompiledRule> {
        let slot = *self.by_id.get(id)?;
        self.rules.get(slot as usize)?.as_ref()
    }

    pub(crate) fn compiled_slot(&self, slot: u32) -> Option<&CompiledRule> {
        self.rules.get(slot as usize)?.as_ref()
    }

    /// A flow by account and id.
    pub fn flow(&self, account: &str, id: &str) -> Option<&Flow> {
        self.compiled_flow(account, id).map(|f| &f.flow)
    }

    pub(crate) fn compiled_flow(&self, account: &str, id: &str) -> Option<&CompiledFlow> {
        self.flows.get(&(account.to_string(), id.to_string()))
    }

    /// The rules matching `event` at `now` (trigger kind, scope, enabled, active window, text
    /// match, exclusions), best first (see the [module docs](self) for the order). Conditions and
    /// limits are not checked here; the [engine](crate::engine) does that.
    pub fn candidates(&self, event: &InboundEvent, now: DateTime<Utc>) -> Vec<Candidate<'_>> {
        let mut buf = String::new();
        self.candidates_with(event, now, &mut buf)
    }

    /// Like [`RuleSet::candidates`], reusing `buf` for the normalized text.
    pub fn candidates_with<'a>(
        &'a self,
        event: &InboundEvent,
        now: DateTime<Utc>,
        buf: &mut String,
    ) -> Vec<Candidate<'a>> {
        let Some(trigger) = event.trigger() else {
            return Vec::new();
        };
        let Some(idx) = self.accounts.get(&event.account) else {
            return Vec::new();
        };
        let text = event.text().unwrap_or("");
        buf.clear();
        normalize_into(text, buf);
        let mut hits = Vec::new();
        let mut excluded = Vec::new();
        idx.base.scan(buf, &mut hits, &mut excluded);
        idx.delta.scan(buf, &mut hits, &mut excluded);
        for &slot in &idx.others {
            let Some(rule) = self.compiled_slot(slot) else {
                continue;
            };
            match &rule.regex {
                Some(re) if re.is_match(text) => {
                    hits.push(Hit {
                        slot,
                        specificity: specificity(RANK_REGEX, 0),
                        keyword: None,
                    });
                }
                Some(_) => {}
                None if rule.rule.matcher.mode == MatchMode::Any => {
                    hits.push(Hit {
                        slot,
                        specificity: specificity(RANK_ANY, 0),
                        keyword: None,
                    });
                }
                None => {}
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        excluded.sort_unstable();
        // best hit per slot
        hits.sort_unstable_by(|a, b| a.slot.cmp(&b.slot).then(b.specificity.cmp(&a.specificity)));
        hits.dedup_by_key(|h| h.slot);
        let mut out: Vec<(Candidate<'a>, &'a CompiledRule)> = Vec::with_capacity(hits.len());
        for h in hits {
            if excluded.binary_search(&h.slot).is_ok() {
                continue;
            }
            let Some(c) = self.compiled_slot(h.slot) else {
                continue;
            };
            if !c.rule.enabled
                || c.triggers & trigger.bit() == 0
                || !c.rule.active.is_none_or(|w| w.contains(now))
                || !scope_allows(&c.rule.scope, event)
            {
                continue;
            }
            out.push((
                Candidate {
                    rule: &c.rule,
                    mode: c.rule.matcher.mode,
                    keyword: h
                        .keyword
                        .and_then(|k| c.rule.matcher.keywords.get(k as usize))
                        .map(String::as_str),
                    specificity: h.specificity,
                    slot: h.slot,
                },
                c,
            ));
        }
        out.sort_unstable_by(|(a, ca), (b, cb)| {
            b.rule
                .priority
                .cmp(&a.rule.priority)
                .then(b.specificity.cmp(&a.specificity))
                .then(ca.age.cmp(&cb.age))
        });
        out.into_iter().map(|(c, _)| c).collect()
    }
}

fn scope_allows(scope: &Scope, event: &InboundEvent) -> bool {
    match &event.kind {
        EventKind::Comment {
            media_id,
            media_kind,
            ..
        } => match scope {
            Scope::Any => true,
            Scope::Media { ids } => ids.iter().any(|i| i == media_id),
            Scope::AnyPost => *media_kind == MediaKind::Post,
            Scope::AnyReel => *media_kind == MediaKind::Reel,
            Scope::Live => *media_kind == MediaKind::Live,
        },
        EventKind::LiveComment { media_id, .. } => match scope {
            Scope::Any | Scope::Live => true,
            Scope::Media { ids } => ids.iter().any(|i| i == media_id),
            Scope::AnyPost | Scope::AnyReel => false,
        },
        _ => true,
    }
}

/// Whether `mode` + `keywords` match `text`, by a plain loop (used in tests and as the naive
/// rival in benchmarks; the [`RuleSet`] gives the same answers through its index).
pub fn matches_naive(mode: MatchMode, keywords: &[String], text: &str) -> bool {
    let t = normalize(text);
    keywords.iter().any(|k| {
        let k = normalize(k);
        if k.is_empty() {
            return false;
        }
        match mode {
            MatchMode::Exact => t == k,
            MatchMode::StartsWith => t.starts_with(&k) && bounded(&t, 0, k.len()),
            MatchMode::Contains => {
                t.match_indices(&k)
                    .any(|(s, _)| bounded(&t, s, s + k.len()))
                    || overlapping_find(&t, &k)
            }
            MatchMode::Any => true,
            MatchMode::Regex => false,
        }
    })
}

fn overlapping_find(t: &str, k: &str) -> bool {
    let mut from = 0;
    while let Some(i) = t.get(from..).and_then(|s| s.find(k)) {
        let s = from + i;
        if bounded(t, s, s + k.len()) {
            return true;
        }
        from = s + t[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn bounded(t: &str, s: usize, e: usize) -> bool {
    let b = t.as_bytes();
    let start = s == 0 || b[s - 1] == b' ' || unspaced_before(t, s) || unspaced_after(t, s);
    let end = e == b.len() || b[e] == b' ' || unspaced_after(t, e) || unspaced_before(t, e);
    start && end
}
