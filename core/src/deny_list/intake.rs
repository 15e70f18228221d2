//! Two kinds of input, two rules.
//!
//! * **Presented** — numbers Amazon Connect itself presents: the contact flow's
//!   `CustomerEndpoint.Address`, DescribeContact's customer endpoint, contact tags, contact records.
//!   They are E.164 already, and they are the key *as they are*: `+` and 1 to 15 digits is enough,
//!   whether or not libphonenumber's metadata knows the range. Spoofed caller IDs (`+11234567890`
//!   with an invalid NANP area code, `+15555555555`, `+190011112222` with too many digits) are
//!   exactly the callers a deny list exists for; a validity gate would make them unlistable and
//!   unmatchable. No metadata is loaded for them, so the contact-flow check costs no parsing.
//!   Anything else a flow presents (a SIP URI, a national form) falls back to the typed rule.
//! * **Typed** — numbers people type: the CLI, import files, the agent's `CustomerNumber`. They are
//!   normalized with libphonenumber's rules ([`normalize`]: separators, national form with the
//!   default region, international prefixes, extensions). A number that normalization rejects but
//!   that is well-formed E.164 once separators are dropped (`+1 (123) 456-7890`) is accepted as
//!   written, with a [`UNKNOWN_RANGE`] warning; `strict` refuses it instead.

use super::number::{is_anonymous, normalize, without_separators, NumberError, E164};

/// The warning of a typed number accepted although the metadata does not know its range.
pub const UNKNOWN_RANGE: &str = "well-formed E.164 but not a number libphonenumber's metadata \
    knows for its country (a spoofed or new range?); taken as written (--strict refuses it)";

/// A number accepted as a deny-list key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub number: E164,
    /// Why a careful operator might look twice ([`UNKNOWN_RANGE`]), if anything.
    pub warning: Option<&'static str>,
}

impl Accepted {
    fn known(number: E164) -> Self {
        Accepted {
            number,
            warning: None,
        }
    }
}

/// A number Amazon Connect presents: the key as it is when it has the E.164 syntax; otherwise the
/// typed rule (not strict). Withheld caller IDs (`anonymous`, the keypad pseudo-numbers) are
/// [`NumberError::Anonymous`] either way.
pub fn presented(raw: &str, default_region: Option<&str>) -> Result<Accepted, NumberError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if is_anonymous(text) {
        return Err(NumberError::Anonymous);
    }
    match E164::from_key(text) {
        Some(number) => Ok(Accepted::known(number)),
        None => typed(text, default_region, false),
    }
}

/// A number a person typed: libphonenumber's rules; a well-formed E.164 number they reject is
/// accepted with a warning unless `strict`.
pub fn typed(
    raw: &str,
    default_region: Option<&str>,
    strict: bool,
) -> Result<Accepted, NumberError> {
    match normalize(raw, default_region) {
        Ok(number) => Ok(Accepted::known(number)),
        Err(e @ NumberError::Invalid { .. }) if !strict => {
            match E164::from_key(&without_separators(raw)) {
                Some(number) => Ok(Accepted {
                    number,
                    warning: Some(UNKNOWN_RANGE),
                }),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPOOFED: [&str; 3] = ["+11234567890", "+15555555555", "+190011112222"];

    #[test]
    fn presented_numbers_are_keys_as_they_are() {
        for n in SPOOFED
            .into_iter()
            .chain(["+14255550100", "+4402079460018"])
        {
            assert_eq!(
                presented(n, None).unwrap(),
                Accepted::known(n.parse().unwrap())
            );
        }
        assert_eq!(presented("anonymous", None), Err(NumberError::Anonymous));
        assert_eq!(presented("+266696687", None), Err(NumberError::Anonymous));
        assert_eq!(presented("  ", None), Err(NumberError::Empty));
        // Not E.164: the typed rule, with the default region.
        assert_eq!(
            presented("sip:+14255550100@example.com", None)
                .unwrap()
                .number
                .as_str(),
            "+14255550100"
        );
        assert_eq!(
            presented("(425) 555-0100", Some("US"))
                .unwrap()
                .number
                .as_str(),
            "+14255550100"
        );
        assert!(presented("+0123", None).is_err());
    }

    #[test]
    fn typed_numbers_unknown_to_the_metadata_are_accepted_with_a_warning_unless_strict() {
        for (input, key) in [
            ("+11234567890", "+11234567890"),
            ("+1 (555) 555-5555", "+15555555555"),
            ("+1 900 1111 2222", "+190011112222"),
            ("＋１ ５５５ ５５５ ５５５５", "+15555555555"),
        ] {
            let got = typed(input, None, false).unwrap();
            assert_eq!(got.number.as_str(), key, "{input}");
            assert_eq!(got.warning, Some(UNKNOWN_RANGE), "{input}");
            assert!(typed(input, None, true).is_err(), "strict refuses {input}");
        }
        // Known numbers: normalized, no warning, strict or not.
        for strict in [false, true] {
            let got = typed("+1 425-555-0100 ext. 12", None, strict).unwrap();
            assert_eq!(got, Accepted::known("+14255550100".parse().unwrap()));
        }
        // Not well-formed: refused either way, for the reason normalization gives.
        for input in [
            "+1 425-555-010O",
            "+0 123",
            "12345",
            "+1234567890123456",
            "call me",
        ] {
            assert_eq!(
                typed(input, None, false).unwrap_err().code(),
                "invalid",
                "{input}"
            );
        }
        // National form still needs a region; anonymous stays anonymous.
        assert!(typed("(123) 456-7890", None, false).is_err());
        assert_eq!(typed("Anonymous", None, false), Err(NumberError::Anonymous));
    }
}
