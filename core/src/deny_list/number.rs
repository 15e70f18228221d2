//! Phone-number normalization to E.164, and masking of numbers for logs.
//!
//! The deny list is keyed by E.164 numbers (`+` and up to 15 digits, e.g. `+14255550100`). Numbers
//! reach us from Amazon Connect contact data (already E.164 for telephone endpoints), from agents
//! and from administrators (any human format), so [`normalize`] accepts real-world formats and
//! produces one canonical key per subscriber number. [`mask`] renders anything number-like for
//! logs without revealing it.
//!
//! # Accepted input
//!
//! * Visual separators anywhere: spaces (including non-breaking and ideographic spaces), `-` and
//!   the Unicode dashes, `.`, `/`, `(`, `)`, `[`, `]`, `~`, zero-width spaces.
//! * International form: a leading `+` (or full-width `＋`); the default region's own
//!   international prefix from libphonenumber metadata (e.g. `0011` in AU, `010` in JP, `810` in
//!   RU, `0021` in BR); `00` in any region; `011` when the default region is a NANP region
//!   (country code 1) or absent. Where prefixes overlap the region's reading wins if it is valid,
//!   as when dialling (in KR `008` is a prefix, so `00 81 90 …` reaches `+1 90…`), else `00` is
//!   tried. A national trunk prefix written inside an international number
//!   (`+44 (0)20 7946 0018`) is removed.
//! * National form with a default region: `(425) 555-0100` (US), `020 7946 0018` (GB),
//!   `030 123456` (DE), carrier selection codes (`0 15 11 98765-4321`, BR), the AR mobile
//!   `15` rewrite, a country code without `+` (`44 7400 123456` with GB), … — libphonenumber
//!   rules.
//! * URIs: `tel:` (RFC 3966, including `;phone-context=+…` for local numbers), `sip:`/`sips:`
//!   (the user part), with or without a display name (`"Alice" <sip:+1425…@host>`).
//! * Extensions (`x123`, `ext. 123`, `extension 123`, `;ext=123`, `,123`) are dropped: E.164 has
//!   no extension and a caller is identified by the line, not by the extension dialled.
//! * Vanity numbers (`1-800-FLOWERS`): letters are converted with the ITU E.161 keypad, as
//!   libphonenumber does, but only when there are at least [`MIN_VANITY_LETTERS`] letters and the
//!   text starts with a digit or `+`. One or two stray letters (`425-555-010O`) are far more
//!   likely a typo than a vanity number and are rejected, so a typo can never turn into a
//!   *different* valid number on the deny list.
//! * Decimal digits of other scripts (full-width, Arabic-Indic, Devanagari) are read as digits.
//!
//! Anything else is rejected: text around the number, `*`/`#` service codes, a `+` after the first
//! digit, national numbers without a default region, numbers valid for no region.
//!
//! # Validity and the library
//!
//! [`normalize`] accepts a number only when libphonenumber says it is *valid* (its digits match a
//! number range of its region), not merely *possible*: length-only checks let many typos through.
//! That is the rule for *reading* human input; it is not a gate on the deny list. Numbers Amazon
//! Connect presents are keys as they are, and a typed number that is well-formed E.164 but unknown
//! to the metadata is taken as written with a warning ([`crate::deny_list::intake`]): spoofed
//! caller IDs must be listable.
//!
//! The parsing, validation and formatting are [`rlibphonenumber`]'s, a port of Google's
//! libphonenumber (metadata and algorithm) that agrees with it; this module only decides *what* is
//! handed to it: the text is reduced to `+digits` or to national digits here (URIs, extensions,
//! vanity letters, anonymous markers and stray characters are our rules, stricter than the
//! library's "find a number in the text"), then parsed. `phonenumber` 0.3, used before, stripped
//! the default region's national prefix from international numbers (rust-phonenumber #30/#76:
//! `+49 1512 3456789` with US became `+495123456789`) and needed ~300 lines of cross-checks here;
//! the comparison is in the README ("Phone-number library").
//!
//! A number written without `+` is read as libphonenumber reads it for the default region (national
//! form, trunk and carrier prefixes, the region's international prefix, a country code without
//! `+`); if that reading is not valid, `00` (any region) and `011` (no region, or a NANP region)
//! are tried as international prefixes, because people copy numbers written for another country.
//!
//! # Anonymous callers
//!
//! A withheld caller ID is not a malformed number: [`normalize`] reports it as
//! [`NumberError::Anonymous`] so that policy can treat it on its own. Recognized: words such as
//! `anonymous`, `private`, `restricted`, `unknown`, `unavailable`, `withheld`, `blocked` (any
//! case, with `+`, `_`/`-` separators or inside a `sip:`/`tel:` URI, as in RFC 3323's
//! `sip:anonymous@anonymous.invalid`), and the keypad spellings some carriers and CPaaS providers
//! present instead of a number (`+266696687` "ANONYMOUS", `+7378742833` "RESTRICTED",
//! `+86282452253` "UNAVAILABLE", `+2562533` "BLOCKED").
//!
//! # Privacy
//!
//! Numbers are personal data. [`E164`]'s `Debug` prints the masked form, no error message or
//! `Debug` output contains digits of the input (reasons are fixed texts, an unknown region is
//! echoed with its digits starred), and [`mask`] never reveals more than four digits.

use std::fmt;
use std::str::FromStr;

use rlibphonenumber::{
    CountryCodeSource, ParseError, PhoneNumberFormat, Region, PHONE_NUMBER_UTIL,
};

/// Longest input accepted, in bytes (Amazon Connect endpoint addresses are at most 256 long).
/// Longer input is rejected before any parsing.
pub const MAX_INPUT_LEN: usize = 256;

/// Fewest letters for a text to be read as a vanity number (libphonenumber's threshold too).
pub const MIN_VANITY_LETTERS: usize = 3;

/// Most digits in an international number after its prefix: 15 (E.164) plus a national prefix
/// written inside it (`+44 (0)…`) plus slack; the metadata decides validity.
const MAX_INTERNATIONAL_DIGITS: usize = 17;

/// Most digits in a national-form number (national and carrier prefixes, country code, number).
const MAX_NATIONAL_DIGITS: usize = 20;

/// Most digits an extension may have to be recognized (and dropped) as one.
const MAX_EXTENSION_DIGITS: usize = 15;

/// Digits shown at each end by [`mask`].
const MASK_KEEP: usize = 2;
/// Fewest digits for [`mask`] to show any: with 8 digits at least half stay hidden.
const MASK_MIN_DIGITS: usize = 8;
/// Most digits for [`mask`] to show any (E.164 has 15; more is not a phone number).
const MASK_MAX_DIGITS: usize = 20;
/// Longest fully masked output, so that garbage of any size logs as a short run of `*`.
const MASK_MAX_STARS: usize = 16;

/// Withheld caller IDs, compared after lower-casing, dropping a URI scheme, host and parameters
/// and a leading `+`, and turning `_`, `-`, `.` and runs of whitespace into single spaces.
const ANONYMOUS_WORDS: &[&str] = &[
    "anonymous",
    "anonymous caller",
    "anon",
    "private",
    "private number",
    "private caller",
    "restricted",
    "restricted number",
    "unknown",
    "unknown caller",
    "unknown number",
    "unavailable",
    "number unavailable",
    "not available",
    "withheld",
    "number withheld",
    "blocked",
    "caller id blocked",
    "no caller id",
    "out of area",
];

/// Keypad spellings presented by some carriers and CPaaS providers for withheld caller IDs:
/// ANONYMOUS, RESTRICTED, UNAVAILABLE, BLOCKED. Matched only in this exact `+` form, so that a
/// real national number with the same digits (e.g. a US `(737) 874-2833`) is not mistaken for one.
const ANONYMOUS_PSEUDO_NUMBERS: &[&str] =
    &["+266696687", "+7378742833", "+86282452253", "+2562533"];

/// An E.164 number, the deny-list key, e.g. `"+14255550100"`.
///
/// Built by [`normalize`] (a valid number, from any human format) or by [`FromStr`] /
/// deserialization / [`E164::from_key`] (the key syntax exactly: `+` and 1 to 15 digits). `Display` prints the E.164 form; `Debug` prints it
/// masked, so that a stray `{:?}` in a log line does not leak the number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// The E.164 form, e.g. `"+14255550100"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number masked for logs, e.g. `"+14*******00"` (see [`mask`]).
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    /// `s` as a key when it has the E.164 syntax (`+`, 1 to 15 ASCII digits, the first not `0`);
    /// no metadata is consulted.
    pub fn from_key(s: &str) -> Option<Self> {
        let digits = s.strip_prefix('+')?;
        let ok = (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| E164(s.to_string()))
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("E164").field(&self.masked()).finish()
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<E164> for String {
    fn from(number: E164) -> Self {
        number.0
    }
}

impl TryFrom<String> for E164 {
    type Error = NumberError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl FromStr for E164 {
    type Err = NumberError;

    /// The key syntax, exactly: `+` and 1 to 15 ASCII digits, the first not `0` (no separators,
    /// whitespace or extension). No metadata is consulted: this is how stored keys and numbers
    /// Amazon Connect presents are read (see [`crate::deny_list::intake`]). Use [`normalize`] for
    /// human input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NumberError::Empty);
        }
        E164::from_key(s).ok_or_else(|| {
            NumberError::invalid("not in E.164 form ('+' and 1 to 15 digits, the first not 0)")
        })
    }
}

/// Why a text is not a usable phone number. No variant ever holds the number in clear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Nothing but whitespace.
    #[error("no phone number given")]
    Empty,
    /// A withheld caller ID (`anonymous`, `private`, `sip:anonymous@anonymous.invalid`, …).
    #[error("the caller ID is withheld (anonymous caller)")]
    Anonymous,
    /// Not a valid phone number; `reason` is a fixed text that never contains the input.
    #[error("invalid phone number: {reason}")]
    Invalid {
        /// What is wrong, in words.
        reason: String,
    },
    /// The default region is not an ISO 3166-1 alpha-2 code known to libphonenumber. Holds the
    /// region as given (trimmed, at most 8 characters, digits replaced by `*`).
    #[error("unknown region {0:?}: expected an ISO 3166-1 alpha-2 code such as \"US\"")]
    UnknownRegion(String),
}

impl NumberError {
    /// A stable machine-readable code: `"empty"`, `"anonymous"`, `"invalid"` or
    /// `"unknown_region"`.
    pub fn code(&self) -> &'static str {
        match self {
            NumberError::Empty => "empty",
            NumberError::Anonymous => "anonymous",
            NumberError::Invalid { .. } => "invalid",
            NumberError::UnknownRegion(_) => "unknown_region",
        }
    }

    /// An [`NumberError::Invalid`] with a fixed reason (never built from the input).
    fn invalid(reason: &'static str) -> Self {
        NumberError::Invalid {
            reason: reason.to_owned(),
        }
    }
}

/// Normalizes a phone number written in any common format to E.164.
///
/// `default_region` is an ISO 3166-1 alpha-2 code (`"US"`, `"gb"`, …; case-insensitive, `"UK"` is
/// read as `"GB"`, blank means none). It is used only for numbers written without `+` (national
/// form, the region's international dialling prefix); a number in international form is never
/// interpreted with it. The region is checked first, so a misconfigured region fails every call,
/// not only calls with national numbers.
///
/// # Errors
///
/// [`NumberError::UnknownRegion`] for an unknown region, [`NumberError::Empty`] for blank input,
/// [`NumberError::Anonymous`] for a withheld caller ID, [`NumberError::Invalid`] for anything that
/// is not a valid number (including national numbers without a default region).
///
/// # Examples
///
/// * `normalize("(425) 555-0100", Some("US"))` → `+14255550100`
/// * `normalize("0049 1512 3456789", None)` → `+4915123456789`
/// * `normalize("+49 1512 3456789", Some("US"))` → `+4915123456789` (the region is ignored)
/// * `normalize("anonymous", None)` → `Err(NumberError::Anonymous)`
pub fn normalize(input: &str, default_region: Option<&str>) -> Result<E164, NumberError> {
    let region = parse_region(default_region)?;
    let text = input.trim();
    if text.is_empty() {
        return Err(NumberError::Empty);
    }
    if text.len() > MAX_INPUT_LEN {
        return Err(NumberError::invalid("input is too long"));
    }
    if is_anonymous(text) {
        return Err(NumberError::Anonymous);
    }
    match dialable(text)? {
        Dialable::International(digits) => normalize_international(&digits),
        Dialable::National(digits) => normalize_national(&digits, region),
    }
}

/// Masks anything number-like for logs.
///
/// Keeps a leading `+`, the first two and the last two digits and replaces the other digits by
/// `*`: `"+14255550100"` → `"+14*******00"`, `"(425) 555-0100"` → `"42******00"`. Separators are
/// dropped. Input that is not made only of digits, separators and a leading `+` (words, URIs,
/// extensions), or that has fewer than 8 or more than 20 digits, is masked entirely: one `*` per
/// non-whitespace character, at most 16. The output never contains more than four digits.
pub fn mask(raw: &str) -> String {
    let text = raw.trim();
    let mut digits = Vec::new();
    let mut number_like = true;
    for (index, c) in text.chars().enumerate() {
        if let Some(d) = decimal_digit(c) {
            digits.push(d);
        } else if !(is_separator(c) || (index == 0 && is_plus(c))) {
            number_like = false;
        }
    }
    let count = digits.len();
    if !number_like || !(MASK_MIN_DIGITS..=MASK_MAX_DIGITS).contains(&count) {
        let stars = text.chars().filter(|c| !c.is_whitespace()).count();
        return "*".repeat(stars.min(MASK_MAX_STARS));
    }
    let mut out = String::with_capacity(count + 1);
    if text.starts_with(is_plus) {
        out.push('+');
    }
    out.extend(&digits[..MASK_KEEP]);
    out.extend(std::iter::repeat_n('*', count - 2 * MASK_KEEP));
    out.extend(&digits[count - MASK_KEEP..]);
    out
}

/// A number reduced to its digits and classified by how it was written.
#[derive(Debug, PartialEq, Eq)]
enum Dialable {
    /// Written with `+` (or a `tel:` phone-context): the digits after it, country code first.
    International(String),
    /// Written without `+`: all its digits (national, carrier or international prefixes included).
    National(String),
}

/// Parses the default region: `None` or blank → `None`; otherwise an ISO 3166-1 alpha-2 code with
/// libphonenumber metadata.
fn parse_region(region: Option<&str>) -> Result<Option<Region>, NumberError> {
    let Some(raw) = region.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let mut code = raw.to_ascii_uppercase();
    if code == "UK" {
        code = "GB".to_owned();
    }
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        if let Ok(id) = Region::from_code(&code) {
            if PHONE_NUMBER_UTIL.get_country_code_for_region(id).is_some() {
                return Ok(Some(id));
            }
        }
    }
    let shown = raw
        .chars()
        .take(8)
        .map(|c| if c.is_numeric() { '*' } else { c })
        .collect();
    Err(NumberError::UnknownRegion(shown))
}

/// Whether the text is a withheld-caller marker rather than a number (see [`ANONYMOUS_WORDS`]).
pub(crate) fn is_anonymous(text: &str) -> bool {
    let text = angle_bracketed(text).unwrap_or(text).trim();
    if ANONYMOUS_PSEUDO_NUMBERS.contains(&text) {
        return true;
    }
    let lower = text.to_lowercase();
    let (without_scheme, _) = strip_scheme(&lower);
    let user = without_scheme
        .split(['@', ';'])
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"')
        .trim_start_matches('+');
    let words = user
        .split(|c: char| c.is_whitespace() || matches!(c, '_' | '-' | '.'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    ANONYMOUS_WORDS.contains(&words.as_str())
}

/// The text between the first `<` and the last `>` (a SIP name-addr), if any.
fn angle_bracketed(text: &str) -> Option<&str> {
    let open = text.find('<')?;
    let close = text.rfind('>')?;
    (open < close).then(|| &text[open + 1..close])
}

/// Strips a `tel:`, `sip:` or `sips:` scheme (any case); the flag tells whether it was SIP.
fn strip_scheme(text: &str) -> (&str, bool) {
    for (scheme, sip) in [("tel:", false), ("sip:", true), ("sips:", true)] {
        if let Some(head) = text.get(..scheme.len()) {
            if head.eq_ignore_ascii_case(scheme) {
                return (&text[scheme.len()..], sip);
            }
        }
    }
    (text, false)
}

/// Reduces the text (already trimmed, not anonymous) to the digits of a number and classifies it
/// as international (`+`) or not: URI syntax, parameters and extensions are removed, separators
/// dropped and vanity letters converted.
fn dialable(text: &str) -> Result<Dialable, NumberError> {
    let text = angle_bracketed(text).unwrap_or(text).trim();
    let (mut text, sip) = strip_scheme(text);
    if sip {
        text = text
            .split_once('@')
            .map(|(user, _host)| user)
            .ok_or_else(|| NumberError::invalid("SIP URI without a user part"))?;
    }

    let mut parts = text.split(';');
    let number = parts.next().unwrap_or_default();
    let mut context = None;
    for parameter in parts.map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = parameter
            .split_once('=')
            .ok_or_else(|| NumberError::invalid("malformed ';' parameter"))?;
        // `ext`, `isub`, `user`, `rn`, `npdi`, … do not change which line is calling.
        if key.trim().eq_ignore_ascii_case("phone-context") {
            context = Some(value.trim());
        }
    }

    let (plus, digits) = clean(strip_extension(number))?;
    if plus {
        // RFC 3966 forbids a phone-context on a global number; the number itself is complete.
        return Ok(Dialable::International(digits));
    }
    if let Some(context) = context {
        return match clean(context) {
            Ok((true, prefix)) => Ok(Dialable::International(prefix + &digits)),
            _ => Err(NumberError::invalid(
                "local number whose phone-context is not a '+' number prefix",
            )),
        };
    }
    Ok(Dialable::National(digits))
}

/// Cuts a trailing extension (`x12`, `ext. 12`, `extension 12`, `,12`) off the number. A marker
/// counts only when it does not continue a word (so vanity letters such as `NEXT` or `XBOX` are
/// left alone) and is followed by nothing but 1 to 15 digits.
fn strip_extension(number: &str) -> &str {
    const MARKERS: [&str; 5] = ["extension", "extn", "ext", "x", ","];
    for (index, c) in number.char_indices() {
        let after_letter = number[..index]
            .chars()
            .next_back()
            .is_some_and(|p| p.is_ascii_alphabetic());
        if after_letter && c != ',' {
            continue;
        }
        let rest = &number[index..];
        for marker in MARKERS {
            let Some(head) = rest.get(..marker.len()) else {
                continue;
            };
            if !head.eq_ignore_ascii_case(marker) {
                continue;
            }
            let extension = rest[marker.len()..]
                .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ':' | ','))
                .trim_end();
            let count = extension.chars().count();
            if (1..=MAX_EXTENSION_DIGITS).contains(&count)
                && extension.chars().all(|c| decimal_digit(c).is_some())
            {
                return &number[..index];
            }
        }
    }
    number
}

/// Reduces a number to ASCII digits: a leading `+` is noted, separators dropped, digits of other
/// scripts read, vanity letters converted (see the module docs). Anything else is an error.
fn clean(number: &str) -> Result<(bool, String), NumberError> {
    let mut plus = false;
    let mut digits = String::with_capacity(number.len());
    let mut letters = 0;
    for c in number.chars() {
        if let Some(d) = decimal_digit(c) {
            digits.push(d);
        } else if is_plus(c) {
            if plus || !digits.is_empty() {
                return Err(NumberError::invalid("'+' is allowed only at the start"));
            }
            plus = true;
        } else if c.is_ascii_alphabetic() {
            if digits.is_empty() {
                return Err(NumberError::invalid("starts with letters"));
            }
            letters += 1;
            digits.push(keypad_digit(c));
        } else if !is_separator(c) {
            return Err(NumberError::invalid("unexpected character"));
        }
    }
    if (1..MIN_VANITY_LETTERS).contains(&letters) {
        return Err(NumberError::invalid("stray letters in the number"));
    }
    if digits.is_empty() {
        return Err(NumberError::invalid("no digits"));
    }
    if digits.len() > MAX_NATIONAL_DIGITS {
        return Err(NumberError::invalid("too many digits"));
    }
    Ok((plus, digits))
}

/// Normalizes digits written without `+`, in order of preference: the default region's reading
/// when it recognized the region's own international prefix (as when dialling there: in KR `008`
/// is a prefix, so `00 81 …` reaches `+1 …`); `00` in any region and `011` without a region or in
/// a NANP region; the region's national reading (trunk and carrier prefixes, a country code
/// without `+`: libphonenumber's rules). The first valid reading wins.
fn normalize_national(digits: &str, region: Option<Region>) -> Result<E164, NumberError> {
    let regional = region.map(|r| parse_valid(digits, Some(r)));
    let regional_idd = matches!(
        &regional,
        Some(Ok((_, CountryCodeSource::FromNumberWithIdd)))
    );
    let nanp = region.is_none_or(|r| PHONE_NUMBER_UTIL.is_nanpa_country(r));
    let generic = [(true, "00"), (nanp, "011")]
        .into_iter()
        .filter(|&(applies, _)| applies && !regional_idd)
        .filter_map(|(_, prefix)| digits.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty() && !rest.starts_with('0'))
        .map(normalize_international);
    let mut first_error = None;
    for reading in generic.chain(regional.map(|r| r.map(|(number, _)| number))) {
        match reading {
            Ok(number) => return Ok(number),
            // A recognized prefix explains a failure better than the national reading.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        NumberError::invalid(
            "national number without a default region (add the country code with '+')",
        )
    }))
}

/// Normalizes the digits that followed `+` (country code first): no default region is involved.
fn normalize_international(digits: &str) -> Result<E164, NumberError> {
    if digits.starts_with('0') {
        return Err(NumberError::invalid(
            "country calling code cannot start with 0",
        ));
    }
    if digits.len() > MAX_INTERNATIONAL_DIGITS {
        return Err(NumberError::invalid("too many digits for an E.164 number"));
    }
    parse_valid(&format!("+{digits}"), None).map(|(number, _)| number)
}

/// Parses `text` (`+digits`, or digits with a region) and formats it as E.164 if it is valid and
/// has at most 15 digits (the key syntax; some metadata ranges are longer). Also tells where the
/// country code came from.
fn parse_valid(
    text: &str,
    region: Option<Region>,
) -> Result<(E164, CountryCodeSource), NumberError> {
    let number = PHONE_NUMBER_UTIL
        .parse_and_keep_raw_input(text, region)
        .map_err(|e| {
            NumberError::invalid(match e {
                ParseError::InvalidCountryCode => "unknown country calling code",
                ParseError::NotANumber(_) => "not a phone number",
                ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "too few digits",
                ParseError::TooLongNsn => "too many digits",
            })
        })?;
    if !PHONE_NUMBER_UTIL.is_valid_number(&number) {
        return Err(NumberError::invalid("not a valid number for its country"));
    }
    let formatted = PHONE_NUMBER_UTIL.format(&number, PhoneNumberFormat::E164);
    let key = E164::from_key(&formatted)
        .ok_or_else(|| NumberError::invalid("too many digits for an E.164 number"))?;
    Ok((key, number.country_code_source()))
}

/// `text` without visual separators, with its decimal digits and `+` in ASCII: `+1 (425) 555-0100`
/// → `+14255550100`. Other characters are kept, so the result is a key only if the text was one.
pub(crate) fn without_separators(text: &str) -> String {
    text.trim()
        .chars()
        .filter(|&c| !is_separator(c))
        .map(|c| {
            if is_plus(c) {
                '+'
            } else {
                decimal_digit(c).unwrap_or(c)
            }
        })
        .collect()
}

/// `+` and its full-width form.
fn is_plus(c: char) -> bool {
    matches!(c, '+' | '\u{FF0B}')
}

/// Visual separators: whitespace, hyphens and dashes, dots, slashes, brackets, tildes, invisible
/// joiners (the set libphonenumber ignores).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.'
                | '/'
                | '('
                | ')'
                | '['
                | ']'
                | '~'
                | '\u{00AD}'
                | '\u{200B}'
                | '\u{2060}'
                | '\u{2010}'..='\u{2015}'
                | '\u{2053}'
                | '\u{2212}'
                | '\u{223C}'
                | '\u{30FC}'
                | '\u{FF08}'
                | '\u{FF09}'
                | '\u{FF0D}'..='\u{FF0F}'
                | '\u{FF3B}'
                | '\u{FF3D}'
                | '\u{FF5E}'
        )
}

/// The ASCII digit for a decimal digit: ASCII, full-width, Arabic-Indic, extended Arabic-Indic,
/// Devanagari.
fn decimal_digit(c: char) -> Option<char> {
    const ZEROS: [u32; 5] = [0x30, 0xFF10, 0x0660, 0x06F0, 0x0966];
    let code = u32::from(c);
    ZEROS.iter().find_map(|&zero| {
        let value = code.checked_sub(zero).filter(|v| *v < 10)?;
        char::from_digit(value, 10)
    })
}

/// ITU E.161 keypad digit of an ASCII letter.
fn keypad_digit(letter: char) -> char {
    match letter.to_ascii_uppercase() {
        'A'..='C' => '2',
        'D'..='F' => '3',
        'G'..='I' => '4',
        'J'..='L' => '5',
        'M'..='O' => '6',
        'P'..='S' => '7',
        'T'..='V' => '8',
        _ => '9',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, region: Option<&str>) -> String {
        match normalize(input, region) {
            Ok(number) => number.as_str().to_owned(),
            Err(e) => panic!("{input:?} with {region:?}: {e}"),
        }
    }

    /// (input, default region, expected E.164): real-world formats from 20 countries.
    const VALID: &[(&str, Option<&str>, &str)] = &[
        // United States / NANP
        ("(425) 555-0100", Some("US"), "+14255550100"),
        ("425.555.0100", Some("US"), "+14255550100"),
        ("425 555 0100", Some("us"), "+14255550100"),
        ("1-425-555-0100", Some("US"), "+14255550100"),
        ("+1 (425) 555-0100", None, "+14255550100"),
        ("+14255550100", Some("DE"), "+14255550100"),
        ("(425) 555-0100 x123", Some("US"), "+14255550100"),
        ("425-555-0100 ext. 45", Some("US"), "+14255550100"),
        ("+1 425 555 0100 extension 7", None, "+14255550100"),
        ("+14255550100;ext=123", None, "+14255550100"),
        ("+1 425 555 0100,,123", None, "+14255550100"),
        ("1-800-FLOWERS", Some("US"), "+18003569377"),
        ("+1 416 555 0199", Some("US"), "+14165550199"),
        ("011 44 20 7946 0018", Some("US"), "+442079460018"),
        ("011 49 1512 3456789", None, "+4915123456789"),
        ("tel:+1-425-555-0100", None, "+14255550100"),
        ("TEL:+1-425-555-0100;ext=7", None, "+14255550100"),
        ("tel:555-0100;phone-context=+1-425", None, "+14255550100"),
        (
            "sip:+14255550100@sip.example.com;user=phone",
            None,
            "+14255550100",
        ),
        (
            "\"Alice\" <sip:+14255550100@example.com>",
            None,
            "+14255550100",
        ),
        (
            "sips:4255550100@pbx.example.com",
            Some("US"),
            "+14255550100",
        ),
        // United Kingdom
        ("020 7946 0018", Some("GB"), "+442079460018"),
        ("020 7946 0018", Some("UK"), "+442079460018"),
        ("+44 (0)20 7946 0018", None, "+442079460018"),
        ("+44 20 7946 0018", Some("US"), "+442079460018"),
        ("07400 123456", Some("GB"), "+447400123456"),
        ("0044 7400 123456", None, "+447400123456"),
        ("44 7400 123456", Some("GB"), "+447400123456"),
        ("0114 496 0123", Some("GB"), "+441144960123"),
        ("+44 161 496 0000", Some("US"), "+441614960000"),
        // Germany
        ("030 123456", Some("DE"), "+4930123456"),
        ("030/123456", Some("DE"), "+4930123456"),
        ("01512 3456789", Some("DE"), "+4915123456789"),
        ("0049 1512 3456789", None, "+4915123456789"),
        ("+49 1512 3456789", Some("US"), "+4915123456789"),
        ("+49 (0)30 123456", None, "+4930123456"),
        ("+49-89-636-48018", Some("GB"), "+498963648018"),
        // France
        ("01 42 68 53 00", Some("FR"), "+33142685300"),
        ("06.12.34.56.78", Some("FR"), "+33612345678"),
        ("+33 (0)1 42 68 53 00", None, "+33142685300"),
        ("0033 6 12 34 56 78", Some("US"), "+33612345678"),
        // Australia
        ("(02) 9374 4000", Some("AU"), "+61293744000"),
        ("0412 345 678", Some("AU"), "+61412345678"),
        ("0011 61 2 9374 4000", Some("AU"), "+61293744000"),
        ("+61 412 345 678", Some("US"), "+61412345678"),
        // Japan
        ("03-3224-5000", Some("JP"), "+81332245000"),
        ("090-1234-5678", Some("JP"), "+819012345678"),
        ("010 1 425 555 0100", Some("JP"), "+14255550100"),
        ("０３－３２２４－５０００", Some("JP"), "+81332245000"),
        // India
        ("098765 43210", Some("IN"), "+919876543210"),
        ("98765 43210", Some("IN"), "+919876543210"),
        ("+91 98765-43210", Some("GB"), "+919876543210"),
        // Brazil
        ("(11) 98765-4321", Some("BR"), "+5511987654321"),
        ("0 15 11 98765-4321", Some("BR"), "+5511987654321"),
        ("+55 11 98765-4321", Some("US"), "+5511987654321"),
        ("0021 1 425 555 0100", Some("BR"), "+14255550100"),
        // Russia
        ("8 800 555 35 35", Some("RU"), "+78005553535"),
        ("+7 800 555 35 35", None, "+78005553535"),
        ("8 (495) 123-45-67", Some("RU"), "+74951234567"),
        ("810 49 30 123456", Some("RU"), "+4930123456"),
        // Italy (leading zero is part of the number)
        ("06 6988 4000", Some("IT"), "+390669884000"),
        ("+39 06 6988 4000", Some("GB"), "+390669884000"),
        ("347 123 4567", Some("IT"), "+393471234567"),
        // Elsewhere
        ("912 345 678", Some("ES"), "+34912345678"),
        ("55 1234 5678", Some("MX"), "+525512345678"),
        ("011 15 2345-6789", Some("AR"), "+5491123456789"),
        ("+54 9 11 2345-6789", Some("US"), "+5491123456789"),
        ("010 6552 9988", Some("CN"), "+861065529988"),
        ("+86 138 0013 8000", Some("US"), "+8613800138000"),
        ("010-1234-5678", Some("KR"), "+821012345678"),
        ("020 123 4567", Some("NL"), "+31201234567"),
        ("044 668 18 00", Some("CH"), "+41446681800"),
        ("03-331 6005", Some("NZ"), "+6433316005"),
        ("021 123 4567", Some("ZA"), "+27211234567"),
        ("+225 07 12 34 56 78", Some("DE"), "+2250712345678"),
        ("+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", None, "+971501234567"),
        ("+800 1234 5678", Some("US"), "+80012345678"),
    ];

    #[test]
    fn real_world_inputs_normalize_to_e164() {
        assert!(VALID.len() >= 40);
        let mut failures = Vec::new();
        for &(input, region, expected) in VALID {
            match normalize(input, region) {
                Ok(n) if n.as_str() == expected => {}
                other => failures.push(format!(
                    "{input:?} with {region:?}: {:?} (want {expected})",
                    other.map(String::from)
                )),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn normalized_numbers_are_fixed_points_and_strictly_parseable() {
        for &(_, _, expected) in VALID {
            assert_eq!(ok(expected, None), expected);
            assert_eq!(ok(expected, Some("JP")), expected);
            let strict: E164 = expected.parse().unwrap();
            assert_eq!(strict.as_str(), expected);
        }
    }

    /// (input, default region, expected error code).
    const INVALID: &[(&str, Option<&str>, &str)] = &[
        ("", None, "empty"),
        ("   \t ", Some("US"), "empty"),
        ("abc", None, "invalid"),
        ("abc", Some("US"), "invalid"),
        ("+", None, "invalid"),
        ("++", Some("US"), "invalid"),
        ("12", Some("US"), "invalid"),
        ("12", None, "invalid"),
        ("+1", None, "invalid"),
        ("+12", None, "invalid"),
        ("+1 425 555 010", None, "invalid"),
        ("+1 425 555 01000", None, "invalid"),
        ("+1 555 555 5555", None, "invalid"),
        ("+44 20 7946 00189999", None, "invalid"),
        ("+999 1234 5678", None, "invalid"),
        ("+0049 1512 3456789", None, "invalid"),
        ("000 49 1512 3456789", Some("DE"), "invalid"),
        ("4255550100", None, "invalid"),
        ("1-800-FLOWERS", None, "invalid"),
        ("425-555-010O", Some("US"), "invalid"),
        ("FLOWERS 1 800", Some("US"), "invalid"),
        ("+1 425 555 0100 +1", None, "invalid"),
        ("++14255550100", None, "invalid"),
        ("call +1 425 555 0100", None, "invalid"),
        ("*67 425 555 0100", Some("US"), "invalid"),
        ("+1 425 555 0100 #", None, "invalid"),
        ("+1 425 555 0100 x", None, "invalid"),
        ("sip:pbx.example.com", None, "invalid"),
        ("tel:7042;phone-context=example.com", Some("US"), "invalid"),
        ("+1425;5550100", None, "invalid"),
        ("0000000000000000000000000", Some("US"), "invalid"),
        ("+4402079460018x", None, "invalid"),
        ("4915123456789", Some("US"), "invalid"),
    ];

    #[test]
    fn malformed_and_invalid_inputs_are_rejected() {
        let mut failures = Vec::new();
        for &(input, region, code) in INVALID {
            match normalize(input, region) {
                Err(e) if e.code() == code => {}
                other => failures.push(format!(
                    "{input:?} with {region:?}: {other:?} (want {code})"
                )),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn oversized_input_is_rejected_before_parsing() {
        let long = "1".repeat(MAX_INPUT_LEN + 1);
        assert_eq!(
            normalize(&long, Some("US")),
            Err(NumberError::invalid("input is too long"))
        );
        let padded = format!("+14255550100{}", " ".repeat(10_000));
        assert_eq!(ok(&padded, None), "+14255550100");
    }

    #[test]
    fn withheld_caller_ids_are_anonymous() {
        let inputs = [
            "anonymous",
            "Anonymous",
            "ANONYMOUS",
            "+anonymous",
            " anonymous ",
            "Anonymous Caller",
            "private",
            "Private Number",
            "restricted",
            "unknown",
            "Unknown",
            "unavailable",
            "not_available",
            "withheld",
            "Number Withheld",
            "blocked",
            "No Caller ID",
            "Out-of-area",
            "sip:anonymous@anonymous.invalid",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "sips:Anonymous@example.com;user=phone",
            "tel:anonymous",
            "+266696687",
            "+7378742833",
            "+86282452253",
            "+2562533",
        ];
        for input in inputs {
            for region in [None, Some("US"), Some("GB")] {
                assert_eq!(
                    normalize(input, region),
                    Err(NumberError::Anonymous),
                    "{input:?}"
                );
            }
        }
        // The keypad spelling is recognized only in its `+` form: a US number with the same
        // digits is a number.
        assert_eq!(ok("737-874-2833", Some("US")), "+17378742833");
    }

    #[test]
    fn regions_are_validated_case_insensitively() {
        assert_eq!(ok("020 7946 0018", Some(" gb ")), "+442079460018");
        assert_eq!(ok("+14255550100", Some("")), "+14255550100");
        assert_eq!(ok("+14255550100", Some("  ")), "+14255550100");
        for (region, shown) in [
            ("XX", "XX"),
            ("ZZ", "ZZ"),
            ("USA", "USA"),
            ("U", "U"),
            ("001", "***"),
            ("+1425555", "+*******"),
            ("é", "é"),
        ] {
            let error = normalize("+14255550100", Some(region)).unwrap_err();
            assert_eq!(
                error,
                NumberError::UnknownRegion(shown.to_owned()),
                "{region:?}"
            );
            assert_eq!(error.code(), "unknown_region");
        }
    }

    #[test]
    fn error_codes_and_messages() {
        assert_eq!(NumberError::Empty.code(), "empty");
        assert_eq!(NumberError::Anonymous.code(), "anonymous");
        assert_eq!(NumberError::invalid("x").code(), "invalid");
        assert_eq!(
            NumberError::UnknownRegion("XX".into()).code(),
            "unknown_region"
        );
        let error = normalize("+1 555 555 5555", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid phone number: not a valid number for its country"
        );
        assert_eq!(
            normalize("+999 1234 5678", None).unwrap_err().to_string(),
            "invalid phone number: unknown country calling code"
        );
    }

    /// Longest run of ASCII digits in a text.
    fn longest_digit_run(text: &str) -> usize {
        text.split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn errors_and_debug_never_show_the_number() {
        for &(input, region, _) in INVALID {
            if let Err(e) = normalize(input, region) {
                assert!(longest_digit_run(&e.to_string()) < 4, "{input:?}: {e}");
                assert!(longest_digit_run(&format!("{e:?}")) < 4, "{input:?}: {e:?}");
            }
        }
        let number = normalize("+14255550100", None).unwrap();
        assert_eq!(format!("{number:?}"), "E164(\"+14*******00\")");
        assert_eq!(format!("{number}"), "+14255550100");
        assert_eq!(number.masked(), "+14*******00");
        let serde_error = serde_json::from_str::<E164>("\"+1 555 555 5555\"").unwrap_err();
        assert!(
            longest_digit_run(&serde_error.to_string()) < 4,
            "{serde_error}"
        );
    }

    #[test]
    fn e164_from_str_is_the_key_syntax() {
        // Keys as Amazon Connect presents them, whether or not the metadata knows the range:
        // spoofed caller IDs (`+1123…`, `+1555…`, too long for NANP) are exactly what a deny list
        // must hold.
        for key in [
            "+14255550100",
            "+390669884000",
            "+11234567890",
            "+15555555555",
            "+190011112222",
            "+1555",
            "+4402079460018",
            "+1",
            "+123456789012345",
        ] {
            assert_eq!(key.parse::<E164>().unwrap().as_str(), key);
        }
        assert_eq!("".parse::<E164>(), Err(NumberError::Empty));
        for input in [
            " +14255550100",
            "+14255550100 ",
            "14255550100",
            "+1 425 555 0100",
            "+1-425-555-0100",
            "+14255550100x1",
            "+0",
            "+01",
            "+",
            "+1234567890123456",
            "anonymous",
            "+٩٧١٥٠١٢٣٤٥٦٧",
        ] {
            let error = input.parse::<E164>().unwrap_err();
            assert_eq!(error.code(), "invalid", "{input:?}");
        }
    }

    #[test]
    fn e164_serde_round_trip() {
        let number = normalize("(425) 555-0100", Some("US")).unwrap();
        let json = serde_json::to_string(&number).unwrap();
        assert_eq!(json, "\"+14255550100\"");
        assert_eq!(serde_json::from_str::<E164>(&json).unwrap(), number);
        assert!(serde_json::from_str::<E164>("\"(425) 555-0100\"").is_err());
        assert!(serde_json::from_str::<E164>("14255550100").is_err());
        assert_eq!(String::from(number.clone()), "+14255550100");
        assert_eq!(E164::try_from("+14255550100".to_owned()).unwrap(), number);
    }

    #[test]
    fn mask_keeps_two_digits_at_each_end() {
        assert_eq!(mask("+14255550100"), "+14*******00");
        assert_eq!(mask("(425) 555-0100"), "42******00");
        assert_eq!(mask("  +44 20 7946 0018 "), "+44********18");
        assert_eq!(mask("+4930123456"), "+49******56");
        assert_eq!(mask("12345678"), "12****78");
        assert_eq!(mask("１２３４５６７８"), "12****78");
        // Short, garbage or non-number input is masked entirely.
        assert_eq!(mask(""), "");
        assert_eq!(mask("1234567"), "*******");
        assert_eq!(mask("12"), "**");
        assert_eq!(mask("+"), "*");
        assert_eq!(mask("abc"), "***");
        assert_eq!(mask("anonymous"), "*********");
        assert_eq!(mask("+1 425 555 0100 x123"), "****************");
        assert_eq!(mask("sip:+14255550100@example.com"), "****************");
        assert_eq!(mask("1+4255550100"), "************");
        assert_eq!(mask(&"9".repeat(21)), "****************");
    }

    /// International numbers, in E.164, from countries whose national prefix or leading zeros
    /// the upstream bug mangles.
    const INTERNATIONAL: &[&str] = &[
        "+4915123456789",
        "+4930123456",
        "+442079460018",
        "+447400123456",
        "+441614960000",
        "+33142685300",
        "+33612345678",
        "+390669884000",
        "+393471234567",
        "+61293744000",
        "+61412345678",
        "+81332245000",
        "+819012345678",
        "+919876543210",
        "+5511987654321",
        "+78005553535",
        "+74951234567",
        "+8613800138000",
        "+821012345678",
        "+3612345678",
        "+35312345678",
        "+2250712345678",
        "+201012345678",
        "+8801712345678",
        "+5491123456789",
        "+34912345678",
        "+14255550100",
        "+80012345678",
    ];

    /// Writes an E.164 number with spaces every three digits after the `+`.
    fn spaced(e164: &str) -> String {
        let digits: Vec<char> = e164[1..].chars().collect();
        let groups: Vec<String> = digits.chunks(3).map(|c| c.iter().collect()).collect();
        format!("+{}", groups.join(" "))
    }

    #[test]
    fn international_numbers_ignore_the_default_region() {
        let regions = [
            None,
            Some("US"),
            Some("GB"),
            Some("DE"),
            Some("FR"),
            Some("AU"),
            Some("JP"),
            Some("IN"),
            Some("BR"),
            Some("RU"),
            Some("IT"),
            Some("CN"),
            Some("KR"),
            Some("AR"),
        ];
        let mut checked = 0;
        for &expected in INTERNATIONAL {
            let digits = &expected[1..];
            let baseline = ok(expected, None);
            assert_eq!(baseline, expected);
            for region in regions {
                let mut forms = vec![expected.to_owned(), spaced(expected)];
                // `00` is not a complete prefix in BR, KR and AU (see `overlapping_prefixes`).
                if !matches!(region, Some("BR" | "KR" | "AU")) {
                    forms.push(format!("00 {digits}"));
                }
                if matches!(region, None | Some("US")) {
                    forms.push(format!("011 {digits}"));
                }
                for form in forms {
                    assert_eq!(ok(&form, region), baseline, "{form:?} with {region:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn overlapping_prefixes_follow_the_region_then_fall_back_to_00() {
        // In KR `008` is an international prefix: dialled there, `00 81 …` reaches +1 ….
        assert_eq!(ok("00 81 90 1234 5678", Some("KR")), "+19012345678");
        assert_eq!(ok("001 81 90 1234 5678", Some("KR")), "+819012345678");
        assert_eq!(ok("+81 90 1234 5678", Some("KR")), "+819012345678");
        // When the regional reading is not a valid number, plain `00` is used.
        assert_eq!(ok("00 61 2 9374 4000", Some("KR")), "+61293744000");
        assert_eq!(ok("00 55 11 98765-4321", Some("BR")), "+5511987654321");
    }

    /// rust-phonenumber #30/#76, the reason `phonenumber` 0.3 was replaced: it stripped the default
    /// region's national prefix from international numbers (`+495123456789` for the first case).
    #[test]
    fn international_numbers_keep_their_digits_whatever_the_default_region() {
        assert_eq!(ok("+49 1512 3456789", Some("US")), "+4915123456789");
        assert_eq!(ok("+39 06 6988 4000", Some("GB")), "+390669884000");
        assert_eq!(ok("+225 07 12 34 56 78", Some("DE")), "+2250712345678");
        assert_eq!(ok("+7 800 555 35 35", None), "+78005553535");
        assert_eq!(ok("8 800 555 35 35", Some("RU")), "+78005553535");
        assert_eq!(ok("011 49 1512 3456789", Some("US")), "+4915123456789");
    }

    #[test]
    fn extensions_and_vanity_letters() {
        assert_eq!(strip_extension("425 555 0100 x123"), "425 555 0100 ");
        assert_eq!(strip_extension("4255550100X123"), "4255550100");
        assert_eq!(strip_extension("425 555 0100 ext: 9"), "425 555 0100 ");
        assert_eq!(strip_extension("1-800-NEXT-123"), "1-800-NEXT-123");
        assert_eq!(strip_extension("1-800-XBOX"), "1-800-XBOX");
        assert_eq!(strip_extension("1-800-EXTRA"), "1-800-EXTRA");
        assert_eq!(ok("1-800-XBOX-ONE", Some("US")), "+18009269663");
        assert_eq!(ok("1-800-GO-FEDEX", Some("US")), "+18004633339");
        assert_eq!(ok("+1 800 flowers", None), "+18003569377");
        assert_eq!(ok("1-800-FLOWERS x12", Some("US")), "+18003569377");
    }

    #[test]
    fn international_prefixes() {
        let london = "+442079460018";
        // The region's own prefix, `00` anywhere, `011` without a region or in a NANP region.
        assert_eq!(ok("011 44 20 7946 0018", Some("US")), london);
        assert_eq!(ok("011 44 20 7946 0018", Some("CA")), london);
        assert_eq!(ok("011 44 20 7946 0018", None), london);
        assert_eq!(ok("00 44 20 7946 0018", Some("US")), london);
        assert_eq!(ok("00 44 20 7946 0018", Some("JP")), london);
        assert_eq!(ok("0011 44 20 7946 0018", Some("AU")), london);
        assert_eq!(ok("010 44 20 7946 0018", Some("JP")), london);
        // In GB, `011…` is a national number (Sheffield), not the NANP prefix.
        assert_eq!(ok("0114 496 0018", Some("GB")), "+441144960018");
        assert!(normalize("011 44 20 7946 0018", Some("GB")).is_err());
        // A prefix followed by 0 or by nothing is not one.
        assert!(normalize("000123", Some("GB")).is_err());
        assert!(normalize("00", Some("GB")).is_err());
        assert!(normalize("00", None).is_err());
    }

    /// Tiny deterministic PRNG (xorshift64) for the no-panic loops.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Every invariant that must hold for any input.
    fn check_invariants(input: &str, region: Option<&str>) {
        let masked = mask(input);
        assert!(
            masked.chars().filter(char::is_ascii_digit).count() <= 4,
            "mask({input:?}) = {masked:?}"
        );
        match normalize(input, region) {
            Ok(number) => {
                let reparsed: E164 = number.as_str().parse().unwrap_or_else(|e| {
                    panic!("{input:?} with {region:?} gave {number:?}, not strict: {e}")
                });
                assert_eq!(reparsed, number);
                assert_eq!(normalize(number.as_str(), None).as_ref(), Ok(&number));
            }
            Err(e) => {
                assert!(longest_digit_run(&e.to_string()) < 4, "{input:?}: {e}");
            }
        }
    }

    #[test]
    fn no_panics_on_mutated_inputs() {
        const ALPHABET: &[char] = &[
            '0', '1', '2', '5', '9', '+', ' ', '-', '(', ')', '.', '/', ';', '=', ':', '@', '<',
            '>', '"', 'x', 'e', 't', 'A', 'z', '#', '*', ',', '０', '٣', '＋', '\u{200B}', 'é',
            '🙂', '\u{0}', '\n',
        ];
        let seeds: Vec<&str> = VALID
            .iter()
            .map(|v| v.0)
            .chain(INVALID.iter().map(|v| v.0))
            .chain([
                "tel:;phone-context=+",
                "sip:@",
                "<>",
                "<sip:+1@>",
                ";ext=",
                "+;=;",
            ])
            .collect();
        let regions = [
            None,
            Some("US"),
            Some("GB"),
            Some("DE"),
            Some("BR"),
            Some("AR"),
            Some("RU"),
        ];
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for round in 0..1_500 {
            let mut chars: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(chars.len() + 1);
                match rng.below(5) {
                    0 | 1 => chars.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                    2 if at < chars.len() => {
                        chars.remove(at);
                    }
                    3 if at < chars.len() => chars[at] = ALPHABET[rng.below(ALPHABET.len())],
                    _ => chars.truncate(at),
                }
            }
            let input: String = chars.into_iter().collect();
            check_invariants(&input, regions[round % regions.len()]);
        }
    }

    #[test]
    fn no_panics_on_random_digit_strings_in_every_region() {
        let regions: Vec<String> = PHONE_NUMBER_UTIL
            .get_supported_regions()
            .map(|r| r.to_string())
            .collect();
        assert!(regions.len() > 200);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..1_500 {
            let len = rng.below(20);
            let mut input = String::new();
            match round % 4 {
                0 => input.push('+'),
                1 => input.push_str("00"),
                _ => {}
            }
            for _ in 0..len {
                input.push(char::from(b'0' + rng.below(10) as u8));
            }
            let region = regions[rng.below(regions.len())].as_str();
            let region = (region.len() == 2).then_some(region);
            check_invariants(&input, region);
        }
    }
}
