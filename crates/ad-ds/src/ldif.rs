//! LDIF (RFC 2849): reading content records (and `changetype: add`) to seed a directory,
//! writing entries to save one. Values that are not safe strings travel as base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// One entry of an LDIF file, with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub dn: String,
    pub attrs: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdifError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for LdifError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for LdifError {}

pub fn parse(text: &str) -> Result<Vec<Record>, LdifError> {
    // Unfold continuation lines first, remembering where each logical line began.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix(' ') {
            match lines.last_mut() {
                Some((_, l)) if !l.is_empty() => l.push_str(cont),
                _ => return Err(LdifError { line: i + 1, column: 1, message: "a continuation line follows nothing".into() }),
            }
        } else {
            lines.push((i + 1, raw.to_string()));
        }
    }
    let mut records = Vec::new();
    let mut cur: Option<Record> = None;
    let mut first = true;
    for (n, l) in lines {
        if l.starts_with('#') {
            continue;
        }
        if l.trim().is_empty() {
            if let Some(r) = cur.take() {
                records.push(r);
            }
            continue;
        }
        let err = |column: usize, m: &str| LdifError { line: n, column, message: m.to_string() };
        let Some(colon) = l.find(':') else { return Err(err(1, "expected `attribute: value`")) };
        let name = &l[..colon];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.') {
            return Err(err(1, &format!("`{name}` is not an attribute description")));
        }
        let rest = &l[colon + 1..];
        // 1-based column where the value starts (after `:`, `::` and the spaces).
        let vcol = {
            let after = rest.strip_prefix(':').unwrap_or(rest);
            colon + 2 + (rest.len() - after.len()) + (after.len() - after.trim_start().len())
        };
        let value: Vec<u8> = if let Some(b) = rest.strip_prefix(':') {
            B64.decode(b.trim()).map_err(|e| err(vcol, &format!("bad base64 value: {e}")))?
        } else if rest.starts_with('<') {
            return Err(err(vcol, "URL values (`:<`) are not supported; inline the value or use base64"));
        } else {
            rest.strip_prefix(' ').unwrap_or(rest).trim_start().as_bytes().to_vec()
        };
        if first && cur.is_none() && name.eq_ignore_ascii_case("version") {
            first = false;
            if value != b"1" {
                return Err(err(vcol, "only LDIF version 1 is known"));
            }
            continue;
        }
        first = false;
        match &mut cur {
            None => {
                if !name.eq_ignore_ascii_case("dn") {
                    return Err(err(1, "a record must start with `dn:`"));
                }
                let dn = String::from_utf8(value).map_err(|_| err(vcol, "the DN is not UTF-8"))?;
                cur = Some(Record { line: n, dn, attrs: Vec::new() });
            }
            Some(r) => {
                if name.eq_ignore_ascii_case("changetype") {
                    if !value.eq_ignore_ascii_case(b"add") {
                        return Err(err(
                            vcol,
                            &format!("changetype `{}` is not supported in a seed file (only add)", String::from_utf8_lossy(&value)),
                        ));
                    }
                    continue;
                }
                if name.eq_ignore_ascii_case("control") {
                    return Err(err(1, "controls are not supported in a seed file"));
                }
                r.attrs.push((name.to_string(), value));
            }
        }
    }
    if let Some(r) = cur.take() {
        records.push(r);
    }
    Ok(records)
}

/// RFC 2849 SAFE-STRING: printable ASCII, not starting with space, `:` or `<`, not ending in space.
fn is_safe(v: &[u8]) -> bool {
    if v.is_empty() {
        return true;
    }
    let first_ok = !matches!(v[0], b' ' | b':' | b'<');
    first_ok && v.last() != Some(&b' ') && v.iter().all(|&b| (0x20..0x7F).contains(&b))
}

/// Appends one entry, folding long lines at 76 columns.
pub fn write_entry(out: &mut String, dn: &str, attrs: &[(String, Vec<Vec<u8>>)]) {
    write_line(out, "dn", dn.as_bytes());
    for (name, vals) in attrs {
        for v in vals {
            write_line(out, name, v);
        }
    }
    out.push('\n');
}

fn write_line(out: &mut String, name: &str, v: &[u8]) {
    let line = if is_safe(v) { format!("{name}: {}", String::from_utf8_lossy(v)) } else { format!("{name}:: {}", B64.encode(v)) };
    let mut first = true;
    let mut rest = line.as_str();
    while !rest.is_empty() {
        let width = if first { 76 } else { 75 };
        let mut cut = rest.len().min(width);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(&rest[..cut]);
        out.push('\n');
        rest = &rest[cut..];
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_rfc2849_content_records() {
        let text = "version: 1\n# a comment\ndn: CN=User1,CN=Users,DC=testlab,DC=example\nobjectClass: user\ndescription: a long\n  folded value\nobjectGUID:: AAECAwQFBgcICQoLDA0ODw==\n\ndn:: Q049w6ksREM9eA==\nchangetype: add\nobjectClass: container\n";
        let r = parse(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].line, 3);
        assert_eq!(r[0].attrs[1], ("description".into(), b"a long folded value".to_vec()));
        assert_eq!(r[0].attrs[2].1, (0u8..16).collect::<Vec<_>>());
        assert_eq!(r[1].dn, "CN=é,DC=x");
    }

    #[test]
    fn errors_say_where() {
        let e = parse("dn: CN=a,DC=x\nobjectClass user\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        let e = parse("dn: CN=a,DC=x\nchangetype: modify\n").unwrap_err();
        assert!(e.to_string().starts_with("2:13: changetype `modify`"), "{e}");
        let e = parse("objectClass: user\n").unwrap_err();
        assert!(e.message.contains("must start with `dn:`"));
        let e = parse("dn: CN=a,DC=x\nphoto:: !!!\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn write_then_parse_round_trips(
            vals in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..6),
            text in "[ -~é]{0,90}",
        ) {
            let mut out = String::new();
            let mut attrs = vec![("description".to_string(), vec![text.clone().into_bytes()])];
            attrs.push(("jpegPhoto".to_string(), vals.clone()));
            write_entry(&mut out, "CN=x,DC=y", &attrs);
            let back = parse(&out).unwrap();
            prop_assert_eq!(back.len(), 1);
            let mut want = vec![("description".to_string(), text.into_bytes())];
            want.extend(vals.into_iter().map(|v| ("jpegPhoto".to_string(), v)));
            prop_assert_eq!(&back[0].attrs, &want);
            prop_assert!(out.lines().all(|l| l.len() <= 77));
        }
    }
}
