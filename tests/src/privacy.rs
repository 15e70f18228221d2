//! Leak checks: does a text carry a caller's number in clear, in any common writing?

/// Characters people and systems put between the digits of a phone number.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t' | '+' | '\\' | '"'
    )
}

/// Whether `text` holds the digits of `number` (its last `min(len, 7)`: the subscriber part, which
/// the masked form never shows) in order with only separators between them: `5550199`,
/// `555-0199`, `(425) 555 0199`, `555.01\u{a0}99` all count; `55*****99` does not.
pub fn leaks_number(text: &str, number: &str) -> bool {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let tail = &digits[digits.len().saturating_sub(7)..];
    if tail.is_empty() {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|start| {
        let mut matched = 0;
        for &c in &chars[start..] {
            if matched == tail.len() {
                break;
            }
            if c == tail[matched] {
                matched += 1;
            } else if matched == 0 || !is_separator(c) {
                return false;
            }
        }
        matched == tail.len()
    })
}

/// Panic naming `what` and the line when any of `numbers` is in `text` in clear.
pub fn assert_no_number(what: &str, text: &str, numbers: &[&str]) {
    for line in text.lines() {
        for n in numbers {
            assert!(
                !leaks_number(line, n),
                "{what}: a caller's number is in clear: {line}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writing_of_a_number_is_found_and_masks_are_not() {
        let n = "+14255550199";
        for text in [
            "14255550199",
            "+1 (425) 555-0199",
            "555.0199",
            "425 555 01 99",
            "\"+1\\u00a0425\"555\u{a0}0199",
        ] {
            assert!(leaks_number(text, n), "{text}");
        }
        assert!(leaks_number("5 5 5 0 1 9 9", n));
        for text in [
            "+14*******99",
            "+1 (4**) ***-**99",
            "555 0198",
            "5550 is 199",
        ] {
            assert!(!leaks_number(text, n), "{text}");
        }
    }
}
