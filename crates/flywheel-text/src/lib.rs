//! Escaping values that came from files, plans or servers before they are
//! printed, so a value can never forge a line of our output.
//!
//! - [`human`]: for text meant for people (terminals, logs). Control
//!   characters (C0 except tab, DEL, C1 such as ANSI's ESC and CSI), line and
//!   paragraph separators and bidirectional overrides are shown as `\n`,
//!   `\r`, `\t`-style or `\u{…}` escapes; everything else is unchanged.
//! - [`github_data`] / [`github_property`]: GitHub's workflow-command rules
//!   (data: `%` `\r` `\n`; properties also `:` and `,`), so a value cannot end
//!   a `::error` line or start a `::stop-commands::` line.

use std::borrow::Cow;

/// Would this character let a value move the cursor, recolor the terminal,
/// break the line or reorder what is shown?
fn unsafe_for_people(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `s` with every control character escaped (see the crate docs); borrowed
/// when nothing needed escaping.
pub fn human(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_for_people) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if unsafe_for_people(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Workflow-command data (after the final `::`): `%`, `\r`, `\n` escaped
/// (GitHub decodes these); any other control character (ANSI's ESC, which
/// GitHub's log renders) is shown as in [`human`].
pub fn github_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if unsafe_for_people(c) => out.push_str(&human(c.encode_utf8(&mut [0; 4]))),
            c => out.push(c),
        }
    }
    out
}

/// Workflow-command property values (`file=…,title=…`): the data escapes
/// plus `:` and `,`.
pub fn github_property(s: &str) -> String {
    github_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forged_lines_and_colors_are_shown_escaped() {
        assert_eq!(
            human("a.b\nguard: allowed\r\u{1b}[32mx\u{7f}\u{9b}\u{202e}"),
            "a.b\\nguard: allowed\\r\\e[32mx\\u{7f}\\u{9b}\\u{202e}"
        );
        assert!(matches!(
            human("helm_release.x[\"a b\"]\tz"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn github_rules() {
        assert_eq!(github_data("50%\r\n::error::x"), "50%25%0D%0A::error::x");
        assert_eq!(github_data("\u{1b}[31m"), "\\e[31m");
        assert_eq!(github_property("a,b:c%\n"), "a%2Cb%3Ac%25%0A");
    }

    proptest! {
        #[test]
        fn escaped_values_are_one_line_without_escapes(s in "\\PC*|[\\x00-\\x20\\x7f-\\x9f\u{2028}\u{202e}a:,%]{0,40}") {
            let h = human(&s);
            prop_assert!(!h.chars().any(unsafe_for_people));
            for g in [github_data(&s), github_property(&s)] {
                prop_assert!(!g.chars().any(unsafe_for_people));
            }
            prop_assert!(!github_property(&s).contains(':') && !github_property(&s).contains(','));
        }
    }
}
