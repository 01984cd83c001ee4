//! The members of a JSON object's top level found without parsing the rest: a value that is
//! not asked for is only delimited (strings jumped over with `memchr`, brackets counted), so
//! reading an answer's `usage` costs a pass over its bytes instead of a full parse. The values
//! asked for are returned raw for serde to parse (and validate).

/// The raw value of each key in `keys` at the top level of the object `body` (`None` where the
/// key is absent), or `None` when `body` is not one object whose members can be delimited or
/// when a key asked for appears twice (a reader might take either).
pub fn members<'a, const N: usize>(
    body: &'a [u8],
    keys: [&str; N],
) -> Option<[Option<&'a [u8]>; N]> {
    let mut found = [None; N];
    let mut i = space(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = space(body, i + 1);
    if body.get(i) == Some(&b'}') {
        return end(body, i + 1).then_some(found);
    }
    loop {
        if body.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(body, i)?;
        let key = &body[i..key_end];
        i = space(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = space(body, i + 1);
        let value_end = value_end(body, i)?;
        if let Some(k) = position(key, &keys) {
            if found[k].is_some() {
                return None;
            }
            found[k] = Some(&body[i..value_end]);
        }
        i = space(body, value_end);
        match body.get(i) {
            Some(b',') => i = space(body, i + 1),
            Some(b'}') => return end(body, i + 1).then_some(found),
            _ => return None,
        }
    }
}

/// Which of `keys` the quoted `key` names (decoded first when it holds escapes).
fn position<const N: usize>(key: &[u8], keys: &[&str; N]) -> Option<usize> {
    let inner = &key[1..key.len() - 1];
    if memchr::memchr(b'\\', inner).is_none() {
        return keys.iter().position(|k| k.as_bytes() == inner);
    }
    let decoded: String = serde_json::from_slice(key).ok()?;
    keys.iter().position(|k| *k == decoded)
}

/// Whether only whitespace follows `i`.
fn end(b: &[u8], i: usize) -> bool {
    space(b, i) == b.len()
}

/// The first index from `i` that is not JSON whitespace.
fn space(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index just past the string whose opening quote is at `i`: a short string is walked
/// byte by byte (a `memchr` call costs more than a few bytes), a long one jumped with `memchr2`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    const WALKED: usize = 24;
    let mut j = i + 1;
    let walked = b.len().min(j + WALKED);
    while j < walked {
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// The bytes a container's walk stops at: quotes and brackets.
const STOPS: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'[' as usize] = true;
    t[b'}' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => container_end(b, i),
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The index just past the object or array that opens at `i`, its brackets matched.
fn container_end(b: &[u8], i: usize) -> Option<usize> {
    // One bit per open bracket (1: an object), as deep as serde_json reads (128).
    let mut open = 0u128;
    let mut depth = 0u32;
    let mut j = i;
    while j < b.len() {
        let c = b[j];
        if !STOPS[usize::from(c)] {
            j += 1;
            continue;
        }
        match c {
            b'"' => {
                j = string_end(b, j)?;
                continue;
            }
            b'{' | b'[' => {
                if depth == 128 {
                    return None;
                }
                open = open << 1 | u128::from(c == b'{');
                depth += 1;
            }
            _ => {
                if (open & 1 == 1) != (c == b'}') {
                    return None;
                }
                open >>= 1;
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(body: &'a str, key: &str) -> Option<Option<&'a str>> {
        members(body.as_bytes(), [key]).map(|[v]| v.map(|v| std::str::from_utf8(v).unwrap()))
    }

    #[test]
    fn a_top_level_value_is_found_whatever_precedes_it() {
        let body = r#" { "id" : "x\"}", "n": -1.5e3, "t": true, "a": [1, {"usage": 9}, "]"],
            "o": {"usage": {"deep": [ ]}}, "usage" : {"prompt_tokens": 3} , "z": null } "#;
        assert_eq!(get(body, "usage"), Some(Some(r#"{"prompt_tokens": 3}"#)));
        assert_eq!(get(body, "n"), Some(Some("-1.5e3")));
        assert_eq!(get(body, "a"), Some(Some(r#"[1, {"usage": 9}, "]"]"#)));
        assert_eq!(get(body, "missing"), Some(None));
        assert_eq!(get("{}", "usage"), Some(None));
    }

    #[test]
    fn a_nested_or_quoted_key_is_not_the_top_level_one() {
        assert_eq!(get(r#"{"o": {"usage": 1}}"#, "usage"), Some(None));
        assert_eq!(get(r#"{"s": "\"usage\": 1"}"#, "usage"), Some(None));
        assert_eq!(get(r#"{"s\"usage": 1}"#, "usage"), Some(None));
        assert_eq!(get(r#"{"us\u0061ge": 2}"#, "usage"), Some(Some("2")));
    }

    #[test]
    fn escapes_are_honoured_in_short_and_long_strings_alike() {
        // The walk changes method after a few bytes: an escape on either side of that point,
        // or across it, must not end the string.
        for n in 0..80 {
            for at in 0..=n {
                let text = format!("{}\\\"{}", "a".repeat(at), "b".repeat(n - at));
                let top = format!(r#"{{"s": "{text}", "usage": 1}}"#);
                assert_eq!(get(&top, "usage"), Some(Some("1")), "{top}");
                let nested = format!(r#"{{"a": ["{text}", {{"usage": 2}}], "usage": 3}}"#);
                assert_eq!(get(&nested, "usage"), Some(Some("3")), "{nested}");
            }
        }
    }

    #[test]
    fn anything_but_one_delimited_object_or_a_repeated_key_is_refused() {
        let deep = format!(
            "{{\"a\": {}{}, \"usage\": 1}}",
            "[".repeat(129),
            "]".repeat(129)
        );
        assert_eq!(get(&deep, "usage"), None);
        let ok = format!(
            "{{\"a\": {}{}, \"usage\": 1}}",
            "[".repeat(128),
            "]".repeat(128)
        );
        assert_eq!(get(&ok, "usage"), Some(Some("1")));
        for bad in [
            "",
            "[]",
            "\"usage\"",
            "{",
            r#"{"usage": 1"#,
            r#"{"usage" 1}"#,
            r#"{"usage": }"#,
            r#"{"a": [1, 2}"#,
            r#"{"a": [1}, "usage": {"prompt_tokens": 1}]}"#,
            r#"{"a": "open}"#,
            r#"{"a": 1} {"usage": 2}"#,
            r#"{"a": 1,, "b": 2}"#,
            r#"{"usage": 1, "usage": 2}"#,
            r#"{"a": "\"#,
        ] {
            assert_eq!(get(bad, "usage"), None, "{bad}");
        }
    }
}
