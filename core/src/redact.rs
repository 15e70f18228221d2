//! Keeping callers' numbers out of error messages, whatever their format.
//!
//! Two layers: [`serde_reason`] drops the values serde quotes into its messages (`invalid type:
//! string "+1 (425) 555-0199", expected …` becomes `invalid type: string, expected …`), so an input
//! value is never echoed; [`redact_numbers`] then masks anything still shaped like a number — digits
//! in order with separators between them, `+1 (425) 555-0199` as much as `14255550199` — keeping the
//! first two and last two digits.

/// Characters that may sit between the digits of a written phone number.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t')
}

/// Mask every number-shaped span of `text` that holds five or more digits: a run of digits, `+`,
/// and separators (space, `-`, `.`, `(`, `)`, `/`, no-break space) between digits.
pub fn redact_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A span from this digit to the last digit reachable through separators.
        let mut end = i;
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_digit() || is_separator(chars[j])) {
            if chars[j].is_ascii_digit() {
                end = j;
            }
            j += 1;
        }
        let span = &chars[i..=end];
        let digits = span.iter().filter(|c| c.is_ascii_digit()).count();
        let after_colon = i > 0 && chars[i - 1] == ':';
        if digits >= 5 && !is_date_or_seconds(span, after_colon) {
            let mut seen = 0;
            for &c in span {
                if c.is_ascii_digit() {
                    seen += 1;
                    out.push(if seen <= 2 || seen > digits - 2 {
                        c
                    } else {
                        '*'
                    });
                } else {
                    out.push(c);
                }
            }
        } else {
            out.extend(span);
        }
        i = end + 1;
    }
    out
}

/// The date (`2025-06-10`) or the seconds with fraction (`:05.214`) of a timestamp: kept, so that
/// error messages about times stay readable.
fn is_date_or_seconds(span: &[char], after_colon: bool) -> bool {
    let shape: String = span
        .iter()
        .map(|&c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    shape == "dddd-dd-dd" || (after_colon && shape.starts_with("dd.") && shape.len() <= 12)
}

/// A serde (or serde_json) message made safe to log: no position suffix (our locations come from
/// the source file), no quoted input value, no number in clear.
pub fn serde_reason(message: &str) -> String {
    redact_numbers(&drop_values(strip_position(message)))
}

/// serde_json appends " at line 1 column 20" for errors from a string.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

/// `invalid type: string "…", expected X` → `invalid type: string, expected X`; likewise
/// `invalid value:` and `unknown variant `…``. Field names and what was expected stay: they come from
/// our types, not from the input.
fn drop_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "unknown variant "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let (unexpected, expected) = match rest.find(", expected ") {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        // What the value was, without the value: `string`, `integer`, `floating point`, `map`.
        let kind = unexpected
            .split(['`', '"', '\''])
            .next()
            .unwrap_or("")
            .trim_end();
        let head = if prefix == "unknown variant " {
            "unknown variant".to_string()
        } else {
            format!("{prefix}{kind}")
        };
        return format!("{}{expected}", head.trim_end_matches(": "));
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_numbers_are_masked_in_every_common_writing() {
        for (text, want) in [
            ("integer `14255550100`", "integer `14*******00`"),
            ("\"+1 (425) 555-0199\"", "\"+1 (4**) ***-**99\""),
            ("+44 20 7946 0958", "+44 ** **** **58"),
            ("425.555.0199", "42*.***.**99"),
            ("0049/30/1234567", "00**/**/*****67"),
            (
                "+1\u{a0}425\u{a0}555\u{a0}0199",
                "+1\u{a0}4**\u{a0}***\u{a0}**99",
            ),
            ("element 3 at 1234", "element 3 at 1234"),
            (
                "e.g. 2025-06-10T14:00:05.214Z",
                "e.g. 2025-06-10T14:00:05.214Z",
            ),
            ("tel:4255550199", "tel:42******99"),
        ] {
            assert_eq!(redact_numbers(text), want, "{text}");
        }
    }

    #[test]
    fn serde_messages_lose_the_value_they_quote() {
        let cases = [
            (
                "invalid type: string \"+1 (425) 555-0199\", expected struct Endpoint at line 1 column 30",
                "invalid type: string, expected struct Endpoint",
            ),
            (
                "invalid type: integer `14255550199`, expected a string",
                "invalid type: integer, expected a string",
            ),
            (
                "invalid value: string \"425 555 0199\", expected a phone number",
                "invalid value: string, expected a phone number",
            ),
            (
                "unknown variant `425-555-0199`, expected one of `VOICE`, `CHAT`",
                "unknown variant, expected one of `VOICE`, `CHAT`",
            ),
            ("missing field `Address`", "missing field `Address`"),
        ];
        for (message, want) in cases {
            assert_eq!(serde_reason(message), want);
        }
        let e = serde_json::from_str::<Vec<String>>("[\"a\", +1 (425) 555-0199]").unwrap_err();
        assert!(!serde_reason(&e.to_string()).contains("555"), "{e}");
    }
}
