//! The top-level members of a JSON object, read and changed in place: the members a
//! change does not touch keep their bytes, their order and the white space between
//! them. Pure functions over bytes, used by the per-key operations of
//! `crate::sessions` inside each store's atomic read-modify-write.
//!
//! With duplicate keys (valid JSON, though rare), a read sees the last one, as
//! JavaScript's `JSON.parse` does; a set replaces the last one; a delete removes all.

use crate::error::{Error, Result};
use serde::de::IgnoredAny;
use std::ops::Range;

/// One member: where its key (the quoted string) and its value lie in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    key: String,
    key_at: Range<usize>,
    value_at: Range<usize>,
}

/// A parsed object: its members, and the offset of its closing brace.
struct Object {
    members: Vec<Member>,
    close: usize,
}

fn not_object(detail: &str) -> Error {
    Error::invalid(format!("session data is not a JSON object ({detail})"))
}

fn skip_ws(doc: &[u8], mut at: usize) -> usize {
    while doc
        .get(at)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The end (one past the closing quote) of the JSON string that starts at `at`.
fn string_end(doc: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match doc.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The end of the JSON value that starts at `at`, validating it.
fn value_end(doc: &[u8], at: usize) -> Option<usize> {
    let mut values = serde_json::Deserializer::from_slice(&doc[at..]).into_iter::<IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => Some(at + values.byte_offset()),
        _ => None,
    }
}

fn parse(doc: &[u8]) -> Result<Object> {
    let mut at = skip_ws(doc, 0);
    if doc.get(at) != Some(&b'{') {
        return Err(not_object("it does not start with {"));
    }
    at = skip_ws(doc, at + 1);
    let mut members = Vec::new();
    if doc.get(at) == Some(&b'}') {
        return finish(doc, members, at);
    }
    loop {
        if doc.get(at) != Some(&b'"') {
            return Err(not_object("a member name is not a string"));
        }
        let end = string_end(doc, at).ok_or_else(|| not_object("an unterminated string"))?;
        let key: String = serde_json::from_slice(&doc[at..end])
            .map_err(|_| not_object("a member name is not a valid string"))?;
        let key_at = at..end;
        at = skip_ws(doc, end);
        if doc.get(at) != Some(&b':') {
            return Err(not_object("a member name without ':'"));
        }
        at = skip_ws(doc, at + 1);
        let end =
            value_end(doc, at).ok_or_else(|| not_object("a member value is not valid JSON"))?;
        members.push(Member {
            key,
            key_at,
            value_at: at..end,
        });
        at = skip_ws(doc, end);
        match doc.get(at) {
            Some(b',') => at = skip_ws(doc, at + 1),
            Some(b'}') => return finish(doc, members, at),
            _ => return Err(not_object("a member is not followed by ',' or '}'")),
        }
    }
}

fn finish(doc: &[u8], members: Vec<Member>, close: usize) -> Result<Object> {
    if skip_ws(doc, close + 1) != doc.len() {
        return Err(not_object("text follows the closing }"));
    }
    Ok(Object { members, close })
}

/// Checks that `value` is one JSON value (white space around it allowed), in UTF-8
/// (RFC 8259). Documents are scanned without that check: a member written by
/// someone else with a Latin-1 byte in a string does not stop the others, nor the
/// owner index, from working.
pub fn check_value(value: &[u8]) -> Result<()> {
    std::str::from_utf8(value)
        .map_err(|_| Error::invalid("json_value is not valid JSON: it is not valid UTF-8"))?;
    serde_json::from_slice::<IgnoredAny>(value)
        .map(|_| ())
        .map_err(|err| Error::invalid(format!("json_value is not valid JSON: {err}")))
}

/// The value of member `key` as JSON text, `None` when there is no such member.
pub fn get<'a>(doc: &'a [u8], key: &str) -> Result<Option<&'a [u8]>> {
    let object = parse(doc)?;
    Ok(object
        .members
        .iter()
        .rev()
        .find(|m| m.key == key)
        .map(|m| &doc[m.value_at.clone()]))
}

/// The document with member `key` set to `value` (replaced in place, or appended
/// after the last member). `value` must have passed [`check_value`].
pub fn set(doc: &[u8], key: &str, value: &[u8]) -> Result<Vec<u8>> {
    let object = parse(doc)?;
    let value = trim(value);
    let mut out = Vec::with_capacity(doc.len() + key.len() + value.len() + 4);
    if let Some(member) = object.members.iter().rev().find(|m| m.key == key) {
        out.extend_from_slice(&doc[..member.value_at.start]);
        out.extend_from_slice(value);
        out.extend_from_slice(&doc[member.value_at.end..]);
        return Ok(out);
    }
    let (at, comma) = match object.members.last() {
        Some(last) => (last.value_at.end, true),
        None => (object.close, false),
    };
    out.extend_from_slice(&doc[..at]);
    if comma {
        out.push(b',');
    }
    let quoted = serde_json::to_vec(key).map_err(|e| Error::invalid(e.to_string()))?;
    out.extend_from_slice(&quoted);
    out.push(b':');
    out.extend_from_slice(value);
    out.extend_from_slice(&doc[at..]);
    Ok(out)
}

/// The document without member `key`, and the removed value (the last one, with
/// duplicates), or `None` when there is no such member.
pub fn remove(doc: &[u8], key: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let object = parse(doc)?;
    let Some(last) = object.members.iter().rev().find(|m| m.key == key) else {
        return Ok(None);
    };
    let value = doc[last.value_at.clone()].to_vec();
    let mut out = doc.to_vec();
    let mut members = object.members;
    // One occurrence at a time, each taking one comma with it: the one after it,
    // or for the last member the one before it.
    while let Some(i) = members.iter().position(|m| m.key == key) {
        let m = &members[i];
        let cut = match (members.get(i + 1), i.checked_sub(1).map(|p| &members[p])) {
            (Some(next), _) => m.key_at.start..next.key_at.start,
            (None, Some(prev)) => prev.value_at.end..m.value_at.end,
            (None, None) => m.key_at.start..m.value_at.end,
        };
        out.drain(cut);
        members = parse(&out)?.members;
    }
    Ok(Some((out, value)))
}

fn trim(value: &[u8]) -> &[u8] {
    let start = skip_ws(value, 0);
    let mut end = value.len();
    while end > start && matches!(value[end - 1], b' ' | b'\t' | b'\n' | b'\r') {
        end -= 1;
    }
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn get_set_remove_keep_the_other_members_byte_for_byte() {
        let doc = br#"{ "user_id" : 42,  "cart":[1, 2],"flash":"saved", "n":{"a":[true,null]} }"#;
        assert_eq!(get(doc, "cart").unwrap(), Some(&b"[1, 2]"[..]));
        assert_eq!(get(doc, "n").unwrap(), Some(&br#"{"a":[true,null]}"#[..]));
        assert_eq!(get(doc, "none").unwrap(), None);
        let set_cart = set(doc, "cart", b" [3] ").unwrap();
        assert_eq!(
            s(&set_cart),
            r#"{ "user_id" : 42,  "cart":[3],"flash":"saved", "n":{"a":[true,null]} }"#
        );
        let added = set(doc, "new \"key\"", b"\"v\"").unwrap();
        assert_eq!(
            s(&added),
            r#"{ "user_id" : 42,  "cart":[1, 2],"flash":"saved", "n":{"a":[true,null]},"new \"key\"":"v" }"#
        );
        assert_eq!(get(&added, "new \"key\"").unwrap(), Some(&b"\"v\""[..]));
        let (popped, value) = remove(doc, "flash").unwrap().unwrap();
        assert_eq!(value, b"\"saved\"");
        assert_eq!(
            s(&popped),
            r#"{ "user_id" : 42,  "cart":[1, 2],"n":{"a":[true,null]} }"#
        );
        let (last, _) = remove(doc, "n").unwrap().unwrap();
        assert_eq!(
            s(&last),
            r#"{ "user_id" : 42,  "cart":[1, 2],"flash":"saved" }"#
        );
        let (first, _) = remove(doc, "user_id").unwrap().unwrap();
        assert_eq!(
            s(&first),
            r#"{ "cart":[1, 2],"flash":"saved", "n":{"a":[true,null]} }"#
        );
        assert!(remove(doc, "none").unwrap().is_none());
    }

    #[test]
    fn empty_objects_single_members_and_duplicates() {
        assert_eq!(s(&set(b"{}", "a", b"1").unwrap()), r#"{"a":1}"#);
        assert_eq!(s(&set(b" { } ", "a", b"1").unwrap()), r#" { "a":1} "#);
        let (none, _) = remove(br#"{"a":1}"#, "a").unwrap().unwrap();
        assert_eq!(s(&none), "{}");
        let dup = br#"{"a":1,"b":2,"a":3}"#;
        assert_eq!(get(dup, "a").unwrap(), Some(&b"3"[..]));
        assert_eq!(s(&set(dup, "a", b"4").unwrap()), r#"{"a":1,"b":2,"a":4}"#);
        let (gone, last) = remove(dup, "a").unwrap().unwrap();
        assert_eq!((s(&gone), s(&last)), (r#"{"b":2}"#, "3"));
        let (gone, _) = remove(br#"{"b":2,"a":1,"a":3}"#, "a").unwrap().unwrap();
        assert_eq!(s(&gone), r#"{"b":2}"#);
        let (gone, _) = remove(br#"{"a":1,"a":3}"#, "a").unwrap().unwrap();
        assert_eq!(s(&gone), "{}");
        // Every result parses as JSON.
        for doc in [&dup[..], br#"{"b":2,"a":1,"a":3}"#, br#"{"a":1}"#] {
            for key in ["a", "b", "c"] {
                if let Some((out, _)) = remove(doc, key).unwrap() {
                    serde_json::from_slice::<serde_json::Value>(&out).unwrap();
                }
                serde_json::from_slice::<serde_json::Value>(&set(doc, key, b"[]").unwrap())
                    .unwrap();
            }
        }
    }

    #[test]
    fn trim_drops_white_space_at_both_ends_only() {
        assert_eq!(trim(b" \t\r\n[1, 2]\n\r\t "), b"[1, 2]");
        assert_eq!(trim(b"1"), b"1");
        assert_eq!(trim(b""), b"");
        // All white space: nothing is left (and nothing is read before the start).
        assert_eq!(trim(b" "), b"");
        assert_eq!(trim(b" \t\r\n"), b"");
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        for bad in [
            &b""[..],
            b"[1,2]",
            b"42",
            b"\"x\"",
            b"{",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":1} x",
            b"{a:1}",
            b"{\"a\":1 \"b\":2}",
            b"{\"a\":[1,}",
            b"{\"\\x\":1}",
            b"\xff",
        ] {
            let err = get(bad, "a").unwrap_err();
            assert_eq!(err.code, crate::SessionError::InvalidArgument, "{bad:?}");
            assert!(err.message.contains("not a JSON object"), "{}", err.message);
            assert!(set(bad, "a", b"1").is_err());
            assert!(remove(bad, "a").is_err());
        }
        for bad in [&b""[..], b"{", b"1 2", b"[1,]", b"nul", b"\"\\q\""] {
            assert!(check_value(bad).is_err(), "{bad:?}");
        }
        for good in [&b"1"[..], b" {\"a\":[]} ", b"\"\\u00e9\"", b"null"] {
            check_value(good).unwrap();
        }
    }
}
