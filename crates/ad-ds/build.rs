//! Reads Microsoft's schema files (schema/*.ldf) into a Rust table: one entry per
//! attributeSchema or classSchema object, its `attribute: value` pairs in file order (base64
//! values decoded), so the DC publishes AD's whole schema without a hand-typed line.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

const FILES: &[&str] = &["AD_DS_Attributes__Windows_Server_2016.ldf", "AD_DS_Classes__Windows_Server_2016.ldf"];

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let mut out = String::from("pub static AD_SCHEMA: &[SchemaObject] = &[\n");
    let mut count = 0;
    for file in FILES {
        let path = dir.join(file);
        println!("cargo::rerun-if-changed={}", path.display());
        // CRLF and not all UTF-8 (the notice's quotes are Windows-1252): read as the text it mostly is
        let text = String::from_utf8_lossy(&std::fs::read(&path).expect("schema file")).replace("\r\n", "\n");
        for block in text.split("\n\n") {
            let fields = unfold(block);
            let Some(cn) = fields.iter().find(|(k, _)| k == "cn").map(|(_, v)| String::from_utf8_lossy(v).into_owned()) else {
                continue;
            };
            write!(out, "    SchemaObject {{ cn: {cn:?}, fields: &[").unwrap();
            for (k, v) in fields.iter().filter(|(k, _)| k != "changetype" && k != "dn") {
                write!(out, "({k:?}, b\"").unwrap();
                for b in v {
                    write!(out, "{}", std::ascii::escape_default(*b)).unwrap();
                }
                out.push_str("\"), ");
            }
            out.push_str("] },\n");
            count += 1;
        }
    }
    out.push_str("];\n");
    assert!(count > 1700, "Microsoft's schema files hold ~1,767 definitions; read {count}");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("ad_schema.rs");
    std::fs::write(dest, out).unwrap();
}

/// An LDIF record's lines, continuation lines joined, comments dropped, `::` values decoded.
fn unfold(block: &str) -> Vec<(String, Vec<u8>)> {
    let mut lines: Vec<String> = vec![];
    for line in block.lines() {
        if line.starts_with('#') {
            continue;
        }
        match (line.strip_prefix(' '), lines.last_mut()) {
            (Some(more), Some(last)) => last.push_str(more),
            _ => lines.push(line.to_string()),
        }
    }
    lines
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let value = match v.strip_prefix(':') {
                Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("base64 value"),
                None => v.trim_start().as_bytes().to_vec(),
            };
            Some((k.to_string(), value))
        })
        .collect()
}
