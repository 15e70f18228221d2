use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};

/// Parse an Amazon Connect timestamp: `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` or `yyyy-mm-ddThh:mm:ssZ`
/// (any RFC 3339 form is accepted).
///
/// The placeholder `1970-01-01T00:00:00.001Z` (and the epoch itself) that AWS samples use for
/// "not set" yields `Ok(None)`.
pub fn parse_timestamp(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let t = DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| {
            format!(
                "invalid timestamp {:?}: {e} (expected e.g. 2025-06-10T14:00:00.000Z)",
                crate::redact::redact_numbers(s)
            )
        })?
        .with_timezone(&Utc);
    if t.timestamp_millis() <= 1 {
        return Ok(None);
    }
    Ok(Some(t))
}

/// Format with millisecond precision and a `Z` suffix, the Amazon Connect style.
pub fn format_millis(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// serde helper: an optional timestamp where `null`, `""` and the epoch placeholder mean "unset".
pub(crate) fn opt_timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_timestamp(&s).map_err(serde::de::Error::custom),
    }
}

/// serde helper: `null` becomes the type's default (for maps and lists that AWS sometimes sends as null).
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_both_documented_formats() {
        let ms = parse_timestamp("2025-06-10T14:00:05.214Z")
            .unwrap()
            .unwrap();
        assert_eq!(format_millis(&ms), "2025-06-10T14:00:05.214Z");
        let s = parse_timestamp("2025-06-10T14:00:05Z").unwrap().unwrap();
        assert_eq!(format_millis(&s), "2025-06-10T14:00:05.000Z");
    }

    #[test]
    fn epoch_placeholder_is_unset() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.001Z").unwrap(), None);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_timestamp("yesterday").is_err());
    }
}
