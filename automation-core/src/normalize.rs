//! Text folding shared by keywords and incoming text.
//!
//! [`normalize`] turns text into a canonical sequence of tokens separated by single spaces:
//!
//! 1. **Width and compatibility folding**: every character is decomposed with NFKD, so fullwidth
//!    `ＬＩＮＫ` becomes `LINK`, `ﬁ` becomes `fi`, `①` becomes `1`.
//! 2. **Accent folding**: combining marks are removed after decomposition, in every script
//!    (`café` → `cafe`, Arabic harakat, Hebrew points, Thai tone marks, Devanagari vowel signs).
//!    Words that differ only by marks therefore match each other.
//! 3. **Case folding**: the full Unicode lowercase mapping, plus the folds that lowercase alone
//!    misses (`ß`/`ẞ` → `ss`, final `ς` → `σ`). Hangul syllables are kept whole.
//! 4. **Emoji are tokens**: each emoji (pictographs, dingbats, symbols such as `❤` or `★`) becomes a
//!    token of its own; skin-tone modifiers, variation selectors and zero-width joiners are dropped,
//!    so `👍🏽` matches `👍`.
//! 5. **Punctuation and whitespace are separators**: every character that is neither a letter,
//!    a number, nor an emoji separates tokens, and runs of separators collapse to one space.
//!
//! Scripts written without spaces between words (Han, Hiragana, Katakana, Thai, Lao, Khmer,
//! Myanmar, Tibetan) are kept as they are; the [matcher](crate::matcher) treats every position next
//! to one of their characters as a word boundary, so a keyword in those scripts matches as a
//! substring (`猫` matches `我的猫很可爱`).
//!
//! ```
//! use automation_core::normalize::normalize;
//! assert_eq!(normalize("  Ｌｉｎｋ,   PLEASE!!! "), "link please");
//! assert_eq!(normalize("Café CRÈME brûlée"), "cafe creme brulee");
//! assert_eq!(normalize("STRASSE Straße"), "strasse strasse");
//! assert_eq!(normalize("ПРИВЕТ,мир"), "привет мир");
//! assert_eq!(normalize("🔥🔥great👍🏽"), "🔥 🔥 great 👍");
//! ```

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Folds `text` into its normalized form (see the [module docs](self)).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// Appends the normalized form of `text` to `out` (which is not cleared first; a separator is
/// added if `out` does not end in one).
pub fn normalize_into(text: &str, out: &mut String) {
    let mut w = Writer {
        out,
        pending_space: false,
    };
    if !w.out.is_empty() && !w.out.ends_with(' ') {
        w.pending_space = true;
    }
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                w.word(c.to_ascii_lowercase());
            } else {
                w.separator();
            }
            continue;
        }
        if is_ignorable(c) {
            continue;
        }
        if is_emoji(c) {
            w.emoji(c);
            continue;
        }
        if let Some(f) = plain_letter(c) {
            w.word(f);
            continue;
        }
        decompose_compatible(c, |d| {
            if is_combining_mark(d) || is_ignorable(d) {
                return;
            }
            if d.is_ascii() {
                if d.is_ascii_alphanumeric() {
                    w.word(d.to_ascii_lowercase());
                } else {
                    w.separator();
                }
            } else if d.is_alphanumeric() {
                match d {
                    'ß' | 'ẞ' => {
                        w.word('s');
                        w.word('s');
                    }
                    'ς' => w.word('σ'),
                    _ => {
                        for l in d.to_lowercase() {
                            if l == 'ß' {
                                w.word('s');
                                w.word('s');
                            } else if !is_combining_mark(l) {
                                w.word(l);
                            }
                        }
                    }
                }
            } else if is_emoji(d) {
                w.emoji(d);
            } else {
                w.separator();
            }
        });
    }
}

struct Writer<'a> {
    out: &'a mut String,
    pending_space: bool,
}

impl Writer<'_> {
    #[inline]
    fn word(&mut self, c: char) {
        if self.pending_space {
            self.out.push(' ');
            self.pending_space = false;
        }
        self.out.push(c);
    }

    #[inline]
    fn separator(&mut self) {
        if !self.out.is_empty() {
            self.pending_space = true;
        }
    }

    #[inline]
    fn emoji(&mut self, c: char) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        self.out.push(c);
        self.pending_space = true;
    }
}

/// Characters dropped without separating: variation selectors, zero-width joiners and
/// non-joiners, skin-tone modifiers, soft hyphen.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}' | '\u{FEFF}')
}

/// Whether `c` is an emoji or pictographic symbol, kept as a token of its own.
pub fn is_emoji(c: char) -> bool {
    matches!(c,
        '\u{00A9}' | '\u{00AE}' | '\u{203C}' | '\u{2049}' | '\u{2122}' | '\u{2139}'
        | '\u{2190}'..='\u{21FF}' | '\u{2300}'..='\u{23FF}' | '\u{24C2}'
        | '\u{25A0}'..='\u{27BF}' | '\u{2900}'..='\u{297F}' | '\u{2B00}'..='\u{2BFF}'
        | '\u{3030}' | '\u{303D}' | '\u{3297}' | '\u{3299}'
        | '\u{1F000}'..='\u{1F3FA}' | '\u{1F400}'..='\u{1FAFF}')
}

/// Whether `c` belongs to a script written without spaces between words (Han, Hiragana,
/// Katakana, Thai, Lao, Khmer, Myanmar, Tibetan). Positions next to such characters are word
/// boundaries for the matcher.
#[inline]
pub fn is_unspaced_script(c: char) -> bool {
    if (c as u32) < 0x0E00 {
        return false;
    }
    matches!(c,
        '\u{0E00}'..='\u{0EFF}' | '\u{0F00}'..='\u{0FFF}' | '\u{1000}'..='\u{109F}'
        | '\u{1780}'..='\u{17FF}' | '\u{19E0}'..='\u{19FF}'
        | '\u{3040}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{FF66}'..='\u{FF9F}'
        | '\u{20000}'..='\u{3FFFF}')
}

/// Letters of common scripts that have no decomposition and fold trivially: answered without
/// the decomposition and case tables (the result is the same as the general path, except that
/// Hangul syllables are kept whole instead of being split into jamo).
#[inline]
fn plain_letter(c: char) -> Option<char> {
    match c {
        '\u{AC00}'..='\u{D7A3}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{0430}'..='\u{0438}'
        | '\u{043A}'..='\u{044F}'
        | '\u{0627}'..='\u{063A}'
        | '\u{0641}'..='\u{064A}'
        | '\u{0E01}'..='\u{0E30}'
        | '\u{0E32}'
        | '\u{0E40}'..='\u{0E46}'
        | '\u{03B1}'..='\u{03C1}'
        | '\u{03C3}'..='\u{03C9}'
        | '\u{0915}'..='\u{0928}'
        | '\u{092A}'..='\u{0930}'
        | '\u{0932}'..='\u{0933}'
        | '\u{0935}'..='\u{0939}' => Some(c),
        '\u{0410}'..='\u{0418}' | '\u{041A}'..='\u{042F}' => char::from_u32(c as u32 + 0x20),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_folding() {
        assert_eq!(normalize("HeLLo WORLD"), "hello world");
        assert_eq!(normalize("ΣΟΦΟΣ σοφος"), "σοφοσ σοφοσ");
        assert_eq!(normalize("Maße MASSE"), "masse masse");
        assert_eq!(normalize("İstanbul"), "istanbul");
    }

    #[test]
    fn accent_and_width_folding() {
        assert_eq!(normalize("Crème Brûlée"), "creme brulee");
        assert_eq!(normalize("ＰＲＩＣＥ？"), "price");
        assert_eq!(normalize("ﬁnal ①"), "final 1");
        assert_eq!(normalize("ｶﾀｶﾅ"), "カタカナ");
        // Arabic: harakat removed
        assert_eq!(normalize("مَرْحَبًا"), "مرحبا");
    }

    #[test]
    fn punctuation_and_whitespace() {
        assert_eq!(normalize("  ...link!!!  \n\t now?? "), "link now");
        assert_eq!(normalize("a-b_c.d"), "a b c d");
        assert_eq!(normalize("!!!"), "");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn emoji_are_tokens() {
        assert_eq!(normalize("love❤️it"), "love ❤ it");
        assert_eq!(normalize("👨‍👩‍👧"), "👨 👩 👧");
        assert_eq!(normalize("🔥"), "🔥");
        assert_eq!(normalize("👍🏿👍"), "👍 👍");
    }

    #[test]
    fn non_latin_scripts() {
        assert_eq!(normalize("Цена?"), "цена");
        assert_eq!(normalize("我想要链接！"), "我想要链接");
        assert_eq!(normalize("안녕하세요 가격"), "안녕하세요 가격");
        assert_eq!(normalize("ราคา เท่าไหร่"), normalize("ราคา  เท่าไหร่!"));
        assert!(is_unspaced_script('猫'));
        assert!(!is_unspaced_script('a'));
    }

    #[test]
    fn fast_path_agrees_with_the_general_path() {
        use unicode_normalization::char::decompose_compatible;
        for c in (0x0300u32..0xD7A4).filter_map(char::from_u32) {
            if let Some(f) = plain_letter(c) {
                if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                    continue;
                }
                let mut d = Vec::new();
                decompose_compatible(c, |x| d.push(x));
                assert_eq!(d, vec![c], "{c:?} decomposes");
                let lower: Vec<char> = c.to_lowercase().collect();
                assert_eq!(lower, vec![f], "{c:?}");
                assert!(c.is_alphanumeric() && !is_emoji(c));
            }
        }
    }

    #[test]
    fn appends_with_separator() {
        let mut s = String::from("abc");
        normalize_into("DEF", &mut s);
        assert_eq!(s, "abc def");
    }

    #[test]
    fn one_megabyte_is_linear_and_fine() {
        let text = "Ünïcödé, ТЕКСТ 🔥 文字! ".repeat(40_000);
        assert!(text.len() > 1_000_000);
        let n = normalize(&text);
        assert!(n.starts_with("unicode текст 🔥 文字 unicode"));
    }

    proptest! {
        #[test]
        fn idempotent(s in "\\PC{0,64}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
        }

        #[test]
        fn no_double_or_edge_spaces(s in "\\PC{0,64}") {
            let n = normalize(&s);
            prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        }

        #[test]
        fn case_insensitive(s in "[a-zA-Zа-яА-ЯÀ-ÿ ]{0,40}") {
            prop_assert_eq!(normalize(&s.to_uppercase()), normalize(&s.to_lowercase()));
        }
    }
}
