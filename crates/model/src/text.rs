//! What agent-written text may hide from the reviewer who reads it:
//! characters that reorder text (bidi controls: the "Trojan Source" class,
//! CVE-2021-42574), that do not show (zero-width and other format
//! characters, controls, blank-looking fillers), and words that mix scripts
//! (Unicode TS #39: a Cyrillic `а` inside a Latin word).
//!
//! Every plain-text surface shows such characters as a visible marker
//! (`⟨U+202E⟩`) through [`reveal`], so they never act; JSON output and the
//! store keep the exact text. [`inspect`] says what a request hides, for
//! the warning a reviewer sees before deciding.

use std::borrow::Cow;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_security::MixedScript;

/// A character that reorders the text around it or is not seen: controls,
/// format characters (bidi controls, zero-width joiners and spaces, the
/// byte-order mark, tags), line and paragraph separators, and the Hangul
/// fillers that render blank.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// A character that changes the direction of the text after it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// The marker a hidden character is shown as.
pub fn marker(c: char) -> String {
    format!("⟨U+{:04X}⟩", c as u32)
}

/// `s` with every hidden character shown as its marker; all else as is.
pub fn reveal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_hidden(c) {
            out.push_str(&marker(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` on one line of at most `max` characters: line breaks and tabs
/// become spaces, hidden characters are revealed, and a longer text is cut
/// with "…" (for table cells and notification titles).
pub fn one_line(s: &str, max: usize) -> String {
    let flat = s.replace(['\n', '\r', '\t'], " ");
    let flat = reveal(&flat);
    if flat.chars().count() <= max {
        return flat.into_owned();
    }
    let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What a set of texts hides.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Each distinct hidden character (line breaks and tabs left out), in
    /// the order first met.
    pub hidden: Vec<char>,
    /// Words that mix scripts.
    pub mixed: Vec<String>,
}

impl Findings {
    /// Adds what `s` hides.
    pub fn add(&mut self, s: &str) {
        for c in s.chars() {
            if is_hidden(c) && !matches!(c, '\n' | '\t' | '\r') && !self.hidden.contains(&c) {
                self.hidden.push(c);
            }
        }
        for word in s.split(|c: char| !c.is_alphanumeric()) {
            if word.chars().count() > 1
                && !word.is_single_script()
                && !self.mixed.iter().any(|w| w == word)
                && self.mixed.len() < 5
            {
                self.mixed.push(word.to_owned());
            }
        }
    }

    /// Adds every key and string inside a JSON value.
    pub fn add_json(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) => self.add(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| self.add_json(i)),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    self.add(k);
                    self.add_json(v);
                }
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty() && self.mixed.is_empty()
    }

    /// One line for the reviewer, or `None` when nothing is hidden:
    /// "hidden characters: ⟨U+202E⟩ (reverses text); mixed scripts: pаypal".
    pub fn warning(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.hidden.is_empty() {
            let list: Vec<String> = self
                .hidden
                .iter()
                .take(8)
                .map(|&c| {
                    if is_bidi_control(c) {
                        format!("{} (changes text direction)", marker(c))
                    } else {
                        marker(c)
                    }
                })
                .collect();
            parts.push(format!("hidden characters: {}", list.join(", ")));
        }
        if !self.mixed.is_empty() {
            let words: Vec<String> = self.mixed.iter().map(|w| reveal(w).into_owned()).collect();
            parts.push(format!("words mixing scripts: {}", words.join(", ")));
        }
        Some(parts.join("; "))
    }
}

/// What these texts hide, as a warning line (see [`Findings::warning`]).
pub fn inspect<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    json: Option<&serde_json::Value>,
) -> Option<String> {
    let mut f = Findings::default();
    for t in texts {
        f.add(t);
    }
    if let Some(v) = json {
        f.add_json(v);
    }
    f.warning()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_and_invisible_characters_are_shown_never_obeyed() {
        let s = "ls\u{202E}txt.exe\u{200B}";
        assert_eq!(
            reveal(s),
            "ls⟨U+202E⟩txt.exe⟨U+200B⟩",
            "the override cannot reorder what follows, the zero-width space shows"
        );
        assert_eq!(
            reveal("plain text"),
            "plain text",
            "ordinary text is untouched"
        );
        assert_eq!(
            reveal("a\u{1b}[31m"),
            "a⟨U+001B⟩[31m",
            "escape codes cannot colour a terminal"
        );
        assert_eq!(
            one_line("a\nb\u{2066}", 20),
            "a b⟨U+2066⟩",
            "a line break cannot start a new table row, the marker shows"
        );
        assert_eq!(
            one_line("abc\u{202E}def", 5),
            "abc⟨…",
            "a long text is cut after revealing, so the cut never hides a marker's start"
        );
    }

    #[test]
    fn the_warning_names_what_is_hidden_and_mixed_script_words() {
        let w = inspect(["rm -rf /\u{202E}", "pаypal.com"], None).expect("something is hidden");
        assert!(w.contains("⟨U+202E⟩ (changes text direction)"), "{w}");
        assert!(
            w.contains("pаypal"),
            "the Cyrillic а in a Latin word is named: {w}"
        );
        assert_eq!(
            inspect(["deploy web", "Löschen", "東京タワー"], None),
            None,
            "one script per word is fine"
        );
        let json = serde_json::json!({"cmd\u{200D}": ["ok", "x\u{2067}y"]});
        let w = inspect([], Some(&json)).unwrap();
        assert!(
            w.contains("U+200D") && w.contains("U+2067"),
            "keys and nested strings count: {w}"
        );
    }
}
