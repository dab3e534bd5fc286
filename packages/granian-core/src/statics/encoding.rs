//! Precompressed siblings: `file.css.br` and `file.css.gz` sent in place of `file.css` to clients
//! that accept them (RFC 9110, 12.5.3), with `Content-Encoding` and `Vary: Accept-Encoding`.

use std::ffi::OsString;
use std::path::Path;

use http::header::ACCEPT_ENCODING;
use http::HeaderMap;

use super::path::{inside, Found};

/// A precompressed sibling of a file.
pub struct Sibling {
    /// The content coding, as `Content-Encoding` names it.
    pub coding: &'static str,
    pub file: Found,
}

/// Codings we look for, in order of preference when the client likes them equally.
const CODINGS: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];

/// The precompressed siblings of `file` that exist inside `root` (symlinks out of it do not count).
pub fn siblings(root: &Path, file: &Path) -> Vec<Sibling> {
    CODINGS
        .iter()
        .filter_map(|(coding, suffix)| {
            let mut name = OsString::from(file.as_os_str());
            name.push(suffix);
            let found = inside(root, Path::new(&name))?;
            found.metadata.is_file().then_some(Sibling { coding, file: found })
        })
        .collect()
}

/// The sibling to send: the coding the client weighs highest (q > 0), br before gzip on a tie.
pub fn choose<'a>(request: &HeaderMap, siblings: impl Iterator<Item = &'a Sibling>) -> Option<&'a Sibling> {
    let accepted: Vec<(String, f32)> = request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(parse_coding)
        .collect();
    let weight = |coding: &str| -> f32 {
        let named = accepted.iter().find(|(name, _)| name == coding || (coding == "gzip" && name == "x-gzip"));
        let any = accepted.iter().find(|(name, _)| name == "*");
        named.or(any).map_or(0.0, |(_, q)| *q)
    };
    let mut best: Option<(&Sibling, f32)> = None;
    for sibling in siblings {
        let q = weight(sibling.coding);
        if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((sibling, q));
        }
    }
    best.map(|(sibling, _)| sibling)
}

/// `coding;q=0.5` as (lowercase coding, weight); a malformed weight makes the entry count as q=0.
fn parse_coding(entry: &str) -> Option<(String, f32)> {
    let mut parts = entry.split(';');
    let coding = parts.next()?.trim().to_ascii_lowercase();
    if coding.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0);
            }
        }
    }
    Some((coding, q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn sibling(coding: &'static str) -> Sibling {
        let path = std::env::temp_dir();
        let metadata = std::fs::metadata(&path).unwrap();
        Sibling { coding, file: Found { path, metadata } }
    }

    fn chosen(accept: &str, available: &[&'static str]) -> Option<&'static str> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        let siblings: Vec<Sibling> = available.iter().map(|coding| sibling(coding)).collect();
        choose(&headers, siblings.iter()).map(|s| s.coding)
    }

    #[test]
    fn the_client_weights_decide() {
        assert_eq!(chosen("gzip, deflate, br", &["br", "gzip"]), Some("br"));
        assert_eq!(chosen("gzip, deflate, br", &["gzip"]), Some("gzip"));
        assert_eq!(chosen("gzip;q=1, br;q=0.5", &["br", "gzip"]), Some("gzip"));
        assert_eq!(chosen("br;q=0, gzip;q=0", &["br", "gzip"]), None);
        assert_eq!(chosen("BR", &["br"]), Some("br"));
        assert_eq!(chosen("*", &["br", "gzip"]), Some("br"));
        assert_eq!(chosen("*;q=0.1, br;q=0", &["br", "gzip"]), Some("gzip"));
        assert_eq!(chosen("x-gzip", &["gzip"]), Some("gzip"));
        assert_eq!(chosen("identity", &["br", "gzip"]), None);
        assert_eq!(chosen("br;q=abc", &["br"]), None);
        assert_eq!(chosen("gzip", &[]), None);
    }
}
