//! Validators, preconditions and ranges for static files (RFC 9110, sections 8.8, 13 and 14).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE};
use http::{HeaderMap, Method};

/// What identifies one representation of a file: a strong entity tag and the modification time.
pub struct Validators {
    /// Quoted, as sent: `"<size>-<mtime ns>[-<encoding>]"` in hex.
    pub etag: String,
    /// Whole seconds, as HTTP dates carry them.
    pub last_modified: SystemTime,
}

impl Validators {
    /// The validators of a file of `size` bytes changed at `modified`, sent with `encoding` (None: as is).
    pub fn new(size: u64, modified: SystemTime, encoding: Option<&str>) -> Self {
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let suffix = encoding.map(|encoding| format!("-{encoding}")).unwrap_or_default();
        Self {
            etag: format!("\"{size:x}-{:x}{suffix}\"", since_epoch.as_nanos()),
            last_modified: UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs()),
        }
    }

    pub fn last_modified_text(&self) -> String {
        httpdate::fmt_http_date(self.last_modified)
    }
}

/// The outcome of the preconditions (RFC 9110, 13.2.2).
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in the RFC's order.
pub fn evaluate(headers: &HeaderMap, validators: &Validators, method: &Method) -> Precondition {
    let safe = method == Method::GET || method == Method::HEAD;
    if let Some(list) = header_text(headers, IF_MATCH) {
        if !list_matches(&list, &validators.etag, true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = header_date(headers, IF_UNMODIFIED_SINCE) {
        if validators.last_modified > date {
            return Precondition::Failed;
        }
    }
    if let Some(list) = header_text(headers, IF_NONE_MATCH) {
        if list_matches(&list, &validators.etag, false) {
            return if safe { Precondition::NotModified } else { Precondition::Failed };
        }
    } else if safe {
        if let Some(date) = header_date(headers, IF_MODIFIED_SINCE) {
            if validators.last_modified <= date {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// How much of a file of `size` bytes to send for a GET.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// The whole representation (no Range, one that is ignored, or an If-Range that does not match).
    Full,
    /// `start..end` (end exclusive), as a 206.
    Partial(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Reads Range and If-Range. A header that is not a valid `bytes` range set is ignored; several
/// satisfiable ranges are answered with the whole file (RFC 9110 lets a server ignore Range), which
/// also keeps many-range requests from costing more than one.
pub fn range(headers: &HeaderMap, validators: &Validators, size: u64) -> RangeDecision {
    let Some(value) = header_text(headers, RANGE) else {
        return RangeDecision::Full;
    };
    if let Some(condition) = header_text(headers, IF_RANGE) {
        let condition = condition.trim();
        let current = if condition.starts_with('"') || condition.starts_with("W/") {
            // If-Range needs a strong match (RFC 9110, 13.1.5).
            !condition.starts_with("W/") && condition == validators.etag
        } else {
            httpdate::parse_http_date(condition).is_ok_and(|date| date == validators.last_modified)
        };
        if !current {
            return RangeDecision::Full;
        }
    }
    let Some(set) = value.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    let mut satisfiable = Vec::new();
    for spec in set.split(',') {
        match parse_range(spec.trim(), size) {
            Some(Some(range)) => satisfiable.push(range),
            Some(None) => {}
            None => return RangeDecision::Full,
        }
    }
    match satisfiable.as_slice() {
        [] => RangeDecision::Unsatisfiable,
        [(start, end)] => RangeDecision::Partial(*start, *end),
        _ => RangeDecision::Full,
    }
}

/// One range spec: None when malformed, Some(None) when valid but unsatisfiable.
fn parse_range(spec: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Digits beyond u64 are a (huge) valid number: clamp rather than refuse.
        Some(text.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        let suffix = number(last)?;
        if suffix == 0 || size == 0 {
            return Some(None);
        }
        return Some(Some((size - suffix.min(size), size)));
    }
    let start = number(first)?;
    let end = if last.is_empty() { u64::MAX } else { number(last)? };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(None);
    }
    Some(Some((start, end.saturating_add(1).min(size))))
}

fn header_text(headers: &HeaderMap, name: http::header::HeaderName) -> Option<String> {
    let values: Vec<&str> = headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn header_date(headers: &HeaderMap, name: http::header::HeaderName) -> Option<SystemTime> {
    // A date that does not parse makes the condition absent (RFC 9110, 13.1.3 and 13.1.4).
    headers.get(name).and_then(|value| value.to_str().ok()).and_then(|text| httpdate::parse_http_date(text).ok())
}

/// Whether an If-Match (strong) or If-None-Match (weak comparison) list names `etag`; `*` matches.
fn list_matches(list: &str, etag: &str, strong: bool) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        match candidate.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag,
            None => candidate == etag,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn validators() -> Validators {
        Validators::new(1000, UNIX_EPOCH + Duration::new(1_700_000_000, 123), None)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn etags_differ_by_size_time_and_encoding() {
        let base = validators();
        assert_eq!(base.etag, format!("\"3e8-{:x}\"", 1_700_000_000_000_000_123u128));
        assert_ne!(base.etag, Validators::new(1001, UNIX_EPOCH + Duration::new(1_700_000_000, 123), None).etag);
        assert_ne!(base.etag, Validators::new(1000, UNIX_EPOCH + Duration::new(1_700_000_000, 124), None).etag);
        assert!(Validators::new(1000, UNIX_EPOCH, Some("br")).etag.ends_with("-br\""));
        assert_eq!(base.last_modified_text(), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn preconditions_follow_the_rfc_order() {
        let v = validators();
        let get = Method::GET;
        let etag = v.etag.clone();
        let weak = format!("W/{etag}");
        assert_eq!(evaluate(&headers(&[]), &v, &get), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[("if-none-match", &etag)]), &v, &get), Precondition::NotModified);
        assert_eq!(evaluate(&headers(&[("if-none-match", &weak)]), &v, &get), Precondition::NotModified);
        assert_eq!(evaluate(&headers(&[("if-none-match", "\"x\", *")]), &v, &get), Precondition::NotModified);
        assert_eq!(evaluate(&headers(&[("if-none-match", "\"other\"")]), &v, &get), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[("if-none-match", &etag)]), &v, &Method::POST), Precondition::Failed);
        let date = v.last_modified_text();
        assert_eq!(evaluate(&headers(&[("if-modified-since", &date)]), &v, &get), Precondition::NotModified);
        let earlier = httpdate::fmt_http_date(v.last_modified - Duration::from_secs(1));
        assert_eq!(evaluate(&headers(&[("if-modified-since", &earlier)]), &v, &get), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[("if-modified-since", "yesterday")]), &v, &get), Precondition::Proceed);
        // If-None-Match wins over If-Modified-Since.
        let both = [("if-none-match", "\"other\""), ("if-modified-since", date.as_str())];
        assert_eq!(evaluate(&headers(&both), &v, &get), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[("if-match", "\"other\"")]), &v, &get), Precondition::Failed);
        assert_eq!(evaluate(&headers(&[("if-match", &weak)]), &v, &get), Precondition::Failed);
        assert_eq!(evaluate(&headers(&[("if-match", &etag)]), &v, &get), Precondition::Proceed);
        assert_eq!(evaluate(&headers(&[("if-unmodified-since", &earlier)]), &v, &get), Precondition::Failed);
        assert_eq!(evaluate(&headers(&[("if-unmodified-since", &date)]), &v, &get), Precondition::Proceed);
    }

    #[test]
    fn ranges() {
        let v = validators();
        let range = |value: &str| super::range(&headers(&[("range", value)]), &v, 1000);
        assert_eq!(super::range(&headers(&[]), &v, 1000), RangeDecision::Full);
        assert_eq!(range("bytes=0-99"), RangeDecision::Partial(0, 100));
        assert_eq!(range("bytes=900-"), RangeDecision::Partial(900, 1000));
        assert_eq!(range("bytes=-100"), RangeDecision::Partial(900, 1000));
        assert_eq!(range("bytes=-5000"), RangeDecision::Partial(0, 1000));
        assert_eq!(range("bytes=990-5000"), RangeDecision::Partial(990, 1000));
        assert_eq!(range("bytes= 10 - 19 "), RangeDecision::Partial(10, 20));
        assert_eq!(range("bytes=0-99999999999999999999999"), RangeDecision::Partial(0, 1000));
        assert_eq!(range("bytes=1000-"), RangeDecision::Unsatisfiable);
        assert_eq!(range("bytes=-0"), RangeDecision::Unsatisfiable);
        assert_eq!(range("bytes=2000-3000, 5000-"), RangeDecision::Unsatisfiable);
        assert_eq!(range("bytes=0-9, 2000-"), RangeDecision::Partial(0, 10));
        assert_eq!(range("bytes=0-9, 20-29"), RangeDecision::Full);
        assert_eq!(range("bytes=9-0"), RangeDecision::Full);
        assert_eq!(range("bytes=abc"), RangeDecision::Full);
        assert_eq!(range("bytes=0-9,x"), RangeDecision::Full);
        assert_eq!(range("items=0-9"), RangeDecision::Full);
        assert_eq!(super::range(&headers(&[("range", "bytes=-1")]), &v, 0), RangeDecision::Unsatisfiable);
    }

    #[test]
    fn if_range_needs_the_current_validator() {
        let v = validators();
        let with =
            |condition: &str| super::range(&headers(&[("range", "bytes=0-9"), ("if-range", condition)]), &v, 1000);
        assert_eq!(with(&v.etag.clone()), RangeDecision::Partial(0, 10));
        assert_eq!(with(&format!("W/{}", v.etag)), RangeDecision::Full);
        assert_eq!(with("\"old\""), RangeDecision::Full);
        assert_eq!(with(&v.last_modified_text()), RangeDecision::Partial(0, 10));
        assert_eq!(with("Tue, 14 Nov 2023 22:13:19 GMT"), RangeDecision::Full);
    }

    /// Property tests: any Range header gives a range inside the file, well-formed ones the exact bytes.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn decide(value: &str, size: u64) -> Option<RangeDecision> {
            let value = HeaderValue::from_str(value).ok()?;
            let mut map = HeaderMap::new();
            map.insert(RANGE, value);
            Some(range(&map, &Validators::new(size, UNIX_EPOCH, None), size))
        }

        fn spec() -> impl Strategy<Value = String> {
            let number = prop_oneof![0..2000u64, Just(u64::MAX), Just(0)].prop_map(|n| n.to_string());
            prop_oneof![
                (number.clone(), number.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
                number.clone().prop_map(|a| format!("{a}-")),
                number.prop_map(|b| format!("-{b}")),
                "[ -~]{0,8}",
            ]
        }

        proptest! {
            #[test]
            fn any_range_stays_inside_the_file(
                specs in proptest::collection::vec(spec(), 1..4),
                prefix in prop_oneof![Just("bytes="), Just("bytes = "), Just("items="), Just("")],
                size in prop_oneof![Just(0u64), 1..3000u64],
            ) {
                let value = format!("{prefix}{}", specs.join(","));
                if let Some(RangeDecision::Partial(start, end)) = decide(&value, size) {
                    prop_assert!(start < end && end <= size, "{value}: {start}..{end} of {size}");
                }
            }

            #[test]
            fn well_formed_single_ranges_are_exact(first in 0..3000u64, length in 0..3000u64, size in 1..3000u64) {
                let last = first + length;
                let expected = if first < size {
                    RangeDecision::Partial(first, (last + 1).min(size))
                } else {
                    RangeDecision::Unsatisfiable
                };
                prop_assert_eq!(decide(&format!("bytes={first}-{last}"), size), Some(expected));
                let suffix = length + 1;
                let tail = RangeDecision::Partial(size - suffix.min(size), size);
                prop_assert_eq!(decide(&format!("bytes=-{suffix}"), size), Some(tail));
            }
        }
    }
}
