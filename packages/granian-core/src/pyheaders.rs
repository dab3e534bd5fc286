//! Response headers as RSGI and WSGI apps give them: an iterable of `(str, str)` pairs.
//!
//! Read into a `HeaderMap` sized for them up front; a list or tuple (what apps pass) is read by
//! index, without an iterator object. Each interface decides what a pair becomes: RSGI leaves out
//! a pair that is not a valid header, WSGI refuses it (PEP 3333).

use http::header::HeaderMap;
use http::{HeaderName, HeaderValue};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// At most this many headers are sized for up front (a map presized for tens of thousands of
/// headers would panic in `http`; a longer list grows the map as it is read).
const PRESIZED_AT_MOST: usize = 64;

/// Room for the headers the server adds to an app's (`content-length`, `server`, `alt-svc`, ...):
/// a map sized for the app's alone would grow again (and copy itself) as they are added.
const ADDED_HEADERS: usize = 4;

/// One header as the interface reads it: `Ok(None)` leaves the pair out.
pub type Header = PyResult<Option<(HeaderName, HeaderValue)>>;

/// The headers of `pairs`; a pair that is not two strings is refused with `not_pairs()`'s error.
pub fn from_str_pairs(
    pairs: &Bound<'_, PyAny>,
    not_pairs: impl Fn() -> PyErr,
    mut header: impl FnMut(&str, &str) -> Header,
) -> PyResult<HeaderMap> {
    let mut read = |map: &mut HeaderMap, item: &Bound<'_, PyAny>| -> PyResult<()> {
        let (name, value): (Bound<'_, PyString>, Bound<'_, PyString>) = item.extract().map_err(|_| not_pairs())?;
        if let Some((name, value)) = header(name.to_str()?, value.to_str()?)? {
            map.append(name, value);
        }
        Ok(())
    };
    let presized = |len: usize| HeaderMap::with_capacity(len.min(PRESIZED_AT_MOST) + ADDED_HEADERS);
    // Exactly a list or tuple: a subclass may iterate differently from its items.
    let mut map;
    if let Ok(list) = pairs.cast_exact::<PyList>() {
        map = presized(list.len());
        list.iter().try_for_each(|item| read(&mut map, &item))?;
    } else if let Ok(tuple) = pairs.cast_exact::<PyTuple>() {
        map = presized(tuple.len());
        tuple.iter().try_for_each(|item| read(&mut map, &item))?;
    } else {
        map = HeaderMap::new();
        pairs.try_iter()?.try_for_each(|item| read(&mut map, &item?))?;
    }
    Ok(map)
}

/// A header whose name and value are valid as they are; anything else is left out, as upstream
/// Granian does for RSGI.
pub fn valid_or_skipped(name: &str, value: &str) -> Header {
    Ok(HeaderName::from_bytes(name.as_bytes()).ok().zip(HeaderValue::from_str(value).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_and_values_are_left_out() {
        let kept = valid_or_skipped("x-a", "1").unwrap().unwrap();
        assert_eq!((kept.0.as_str(), kept.1.as_bytes()), ("x-a", &b"1"[..]));
        assert!(valid_or_skipped("bad name", "v").unwrap().is_none());
        assert!(valid_or_skipped("x-b", "line\nbreak").unwrap().is_none());
    }
}
