//! Response headers as RSGI and WSGI apps give them: an iterable of `(str, str)` pairs; and the
//! cache of converted pairs that ASGI's `(bytes, bytes)` pairs use too.
//!
//! Read into a `HeaderMap` sized for them up front; a list or tuple (what apps pass) is read by
//! index, without an iterator object. Each interface decides what a pair becomes: RSGI leaves out
//! a pair that is not a valid header, WSGI refuses it (PEP 3333).
//!
//! Apps mostly pass the same string objects response after response (constants of the app or of
//! its framework), so each thread keeps the last pairs it converted, by the identity of their two
//! strings, in a `PairCache` per interface: a pair seen before costs two pointer comparisons and
//! two reference-count increments instead of two UTF-8 reads, a check of every byte and a copy of
//! the value into a new allocation (freed again on another thread). The cache holds a reference to
//! both objects, so neither can be freed and its address given to another object while cached;
//! and it keeps only exact `str` and `bytes` objects, which cannot change, so the same two objects
//! always make the same header.

use std::cell::RefCell;
use std::thread::LocalKey;

use http::header::HeaderMap;
use http::{HeaderName, HeaderValue};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// At most this many headers are sized for up front (a map presized for tens of thousands of
/// headers would panic in `http`; a longer list grows the map as it is read).
const PRESIZED_AT_MOST: usize = 64;

/// Room for the headers the server adds to an app's (`content-length`, `server`, `alt-svc`, ...):
/// a map sized for the app's alone would grow again (and copy itself) as they are added.
const ADDED_HEADERS: usize = 4;

/// One header as the interface reads it: `Ok(None)` leaves the pair out.
pub type Header = PyResult<Option<(HeaderName, HeaderValue)>>;

/// Slots of a `PairCache` (one pair each, placed by the identity of its strings).
const CACHED_PAIRS: usize = 32;

/// Pairs whose name and value together are longer than this are not cached: it bounds what a
/// thread's cache keeps alive to a few kilobytes.
const CACHED_PAIR_MAX_LEN: usize = 256;

/// The pairs of `str` or `bytes` objects one thread last converted for one interface, with their
/// headers.
pub struct PairCache(RefCell<[Option<CachedPair>; CACHED_PAIRS]>);

struct CachedPair {
    name: Py<PyAny>,
    value: Py<PyAny>,
    header: (HeaderName, HeaderValue),
}

impl PairCache {
    pub const fn new() -> Self {
        Self(RefCell::new([const { None }; CACHED_PAIRS]))
    }

    fn slot(name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> usize {
        // Objects are 16-byte aligned; mix both addresses so that pairs sharing a name spread.
        let mixed = (name.as_ptr() as usize >> 4) ^ (value.as_ptr() as usize >> 4).wrapping_mul(0x9E37_79B9);
        mixed % CACHED_PAIRS
    }

    /// The header made from exactly these two objects, if it is cached.
    pub fn get(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> Option<(HeaderName, HeaderValue)> {
        let slots = self.0.try_borrow().ok()?;
        let cached = slots[Self::slot(name, value)].as_ref()?;
        (cached.name.as_ptr() == name.as_ptr() && cached.value.as_ptr() == value.as_ptr())
            .then(|| cached.header.clone())
    }

    /// Remembers the header made from `name` and `value` (exact `str` or `bytes` objects, which
    /// cannot change; short pairs only).
    pub fn keep(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, header: &(HeaderName, HeaderValue)) {
        let unchangeable = |object: &Bound<'_, PyAny>| {
            object.is_exact_instance_of::<PyString>() || object.is_exact_instance_of::<PyBytes>()
        };
        if !unchangeable(name) || !unchangeable(value) || header.0.as_str().len() + header.1.len() > CACHED_PAIR_MAX_LEN
        {
            return;
        }
        let pair = CachedPair { name: name.clone().unbind(), value: value.clone().unbind(), header: header.clone() };
        let evicted = match self.0.try_borrow_mut() {
            Ok(mut slots) => slots[Self::slot(name, value)].replace(pair),
            Err(_) => Some(pair),
        };
        // Released after the borrow ends: freeing a string runs no Python code, but this keeps the
        // cache usable from anything that would.
        drop(evicted);
    }
}

/// The headers of `pairs`; a pair that is not two strings is refused with `not_pairs()`'s error.
/// `header` must make the same header from the same strings every time: `cache` keeps its results.
pub fn from_str_pairs(
    pairs: &Bound<'_, PyAny>,
    cache: &'static LocalKey<PairCache>,
    not_pairs: impl Fn() -> PyErr,
    mut header: impl FnMut(&str, &str) -> Header,
) -> PyResult<HeaderMap> {
    let mut read = |map: &mut HeaderMap, item: &Bound<'_, PyAny>| -> PyResult<()> {
        let (name, value): (Bound<'_, PyString>, Bound<'_, PyString>) = item.extract().map_err(|_| not_pairs())?;
        if let Some((header_name, header_value)) = cache.with(|cache| cache.get(name.as_any(), value.as_any())) {
            map.append(header_name, header_value);
        } else if let Some(made) = header(name.to_str()?, value.to_str()?)? {
            cache.with(|cache| cache.keep(name.as_any(), value.as_any(), &made));
            map.append(made.0, made.1);
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
