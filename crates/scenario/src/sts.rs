//! The STS's sign-in pages as a browser reads them, for the interactive steps: a form's
//! hidden fields, an element's text by id, the AADSTS code a page shows. The pages are the
//! lab's own (askama-escaped HTML with Entra's element ids), so a small reader suffices.

/// HTML's character references as askama writes them (`&#38;`, `&#x27;`, `&amp;` …).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first `<input … name="NAME" … value="…">`.
pub fn field(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let mut from = 0;
    while let Some(at) = html[from..].find(&needle) {
        let at = from + at;
        let start = html[..at].rfind('<')?;
        let end = at + html[at..].find('>')?;
        let tag = &html[start..end];
        if tag.starts_with("<input") {
            let v = tag.find("value=\"")? + 7;
            let len = tag[v..].find('"')?;
            return Some(unescape(&tag[v..v + len]));
        }
        from = end;
    }
    None
}

/// The text of the element with `id` (its tags left out), trimmed.
pub fn text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let open_end = at + html[at..].find('>')? + 1;
    let tag_start = html[..at].rfind('<')?;
    let name: String = html[tag_start + 1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let close = open_end + html[open_end..].find(&format!("</{name}>"))?;
    let mut inner = String::new();
    let mut in_tag = false;
    for c in html[open_end..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => inner.push(c),
            _ => {}
        }
    }
    Some(unescape(inner.split_whitespace().collect::<Vec<_>>().join(" ").trim()))
}

/// The AADSTS code a text names (`AADSTS50011: …`, `(AADSTS50126)`).
pub fn aadsts(text: &str) -> Option<u64> {
    let at = text.find("AADSTS")? + 6;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_as_a_browser_reads_them() {
        let html = r#"<form><input type="hidden" name="ctx" value="a:x=1&#38;y=&#39;2&#39;"><input name="other" value="o"></form>
<h1 id="loginHeader">Enter password</h1><div id="passwordError" class="error">Your account or password is incorrect. <span id="aadsts">(AADSTS50126)</span></div>"#;
        assert_eq!(field(html, "ctx").as_deref(), Some("a:x=1&y='2'"));
        assert_eq!(field(html, "other").as_deref(), Some("o"));
        assert_eq!(field(html, "none"), None);
        assert_eq!(text(html, "loginHeader").as_deref(), Some("Enter password"));
        let e = text(html, "passwordError").unwrap();
        assert_eq!(e, "Your account or password is incorrect. (AADSTS50126)");
        assert_eq!(aadsts(&e), Some(50126));
        assert_eq!(unescape("don&#39;t &amp; &#x27;x&#x27; &bogus; &"), "don't & 'x' &bogus; &");
    }
}
