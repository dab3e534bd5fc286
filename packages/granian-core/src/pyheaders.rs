//! Response headers as RSGI and WSGI apps give them: an iterable of `(str, str)` pairs; and the
//! cache of converted pairs that ASGI's `(bytes, bytes)` pairs use too.
//!
//! Read into a `HeaderMap` sized for them up front; a list or tuple (what apps pass) is read by
//! index, without an iterator object. Each interface decides what a pair becomes: RSGI leaves out
//! a pair that is not a valid header, WSGI refuses it (PEP 3333).
//!
//! Apps mostly pass the same string objects response after response (constants of the app or of
//! its framework), so each thread keeps the last pairs it converted, by the identity of their two
//! strings, in a `PairCache` per interface: from its third time, a pair costs two pointer
//! comparisons and two reference-count increments instead of two UTF-8 reads, a check of every byte
//! and a copy of the value into a new allocation (freed again on another thread). The cache holds a
//! reference to both objects, so neither can be freed and its address given to another object
//! while cached; and it keeps only exact `str` and `bytes` objects, which cannot change, so the same
//! two objects always make the same header.

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

/// Slots of a `PairCache` (one pair each, placed by the identity of its objects).
const CACHED_PAIRS: usize = 64;

/// Pairs whose name and value together are longer than this are not cached: it bounds what a
/// thread's cache keeps alive to a few kilobytes.
const CACHED_PAIR_MAX_LEN: usize = 256;

/// The pairs of `str` or `bytes` objects one thread last converted for one interface, with their
/// headers once a pair has come twice.
///
/// A value made anew for each response (a `Content-Length`, a date) never comes again; keeping
/// its header would cost an allocation (the value's bytes become shared) for nothing. So a pair
/// seen for the first time is only noted (two reference increments), and its header kept when the
/// same two objects come again.
pub struct PairCache(RefCell<[Option<CachedPair>; CACHED_PAIRS]>);

struct CachedPair {
    name: Py<PyAny>,
    value: Py<PyAny>,
    /// Set when the pair came a second time.
    header: Option<(HeaderName, HeaderValue)>,
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

    /// The header of `name` and `value`: the kept one when these two objects came before, else
    /// `make()`'s (which must make the same header from the same objects every time). Only exact
    /// `str` and `bytes` objects are noted (they cannot change), and only short pairs.
    pub fn convert(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, make: impl FnOnce() -> Header) -> Header {
        let slot = Self::slot(name, value);
        let same =
            |cached: &CachedPair| cached.name.as_ptr() == name.as_ptr() && cached.value.as_ptr() == value.as_ptr();
        let seen = match self.0.try_borrow() {
            Ok(slots) => match &slots[slot] {
                Some(cached) if same(cached) => match &cached.header {
                    Some(header) => return Ok(Some(header.clone())),
                    None => true,
                },
                _ => false,
            },
            Err(_) => return make(),
        };
        let made = make()?;
        let Some(header) = made else { return Ok(None) };
        let unchangeable = |object: &Bound<'_, PyAny>| {
            object.is_exact_instance_of::<PyString>() || object.is_exact_instance_of::<PyBytes>()
        };
        if unchangeable(name) && unchangeable(value) && header.0.as_str().len() + header.1.len() <= CACHED_PAIR_MAX_LEN
        {
            let Ok(mut slots) = self.0.try_borrow_mut() else { return Ok(Some(header)) };
            let evicted = match &mut slots[slot] {
                Some(cached) if seen && same(cached) => {
                    cached.header = Some(header.clone());
                    None
                }
                entry => entry.replace(CachedPair {
                    name: name.clone().unbind(),
                    value: value.clone().unbind(),
                    header: None,
                }),
            };
            drop(slots);
            // Released after the borrow ends: freeing a string runs no Python code, but this keeps
            // the cache usable from anything that would.
            drop(evicted);
        }
        Ok(Some(header))
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
        let made = cache
            .with(|cache| cache.convert(name.as_any(), value.as_any(), || header(name.to_str()?, value.to_str()?)))?;
        if let Some((header_name, header_value)) = made {
            map.append(header_name, header_value);
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
