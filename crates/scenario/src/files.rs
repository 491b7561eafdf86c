//! Files a user names (scenarios, exercises, LDIF, `lab.json`, certificates), read with a
//! bound on what is read — not on what the file system says, which a device or a pipe does
//! not know: `/dev/zero` given as a scenario is an error naming the limit, not a process that
//! fills memory.

use std::io::Read;
use std::path::Path;

/// A scenario or exercise file (YAML).
pub const SCENARIO_MAX: u64 = 4 << 20;
/// An LDIF seed (100,000 users of the bench's LDIF are ~40 MiB).
pub const LDIF_MAX: u64 = 256 << 20;
/// `lab.json`.
pub const LAB_JSON_MAX: u64 = 16 << 20;
/// A PEM file (a CA bundle, a certificate chain, a key).
pub const PEM_MAX: u64 = 1 << 20;

/// At most `limit` bytes of `path`; a longer file is an error that says so.
pub fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(limit + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than the {} the lab reads", size(limit))));
    }
    Ok(out)
}

/// The same, as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_its_limit_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, "a".repeat(2048)).unwrap();
        assert_eq!(read_text(&p, 2048).unwrap().len(), 2048);
        let e = read_text(&p, 2047).unwrap_err();
        assert_eq!(e.to_string(), "larger than the 1 KiB the lab reads");
        // a device that never ends: refused after the limit, not read for ever
        let e = read(Path::new("/dev/zero"), SCENARIO_MAX).unwrap_err();
        assert_eq!(e.to_string(), "larger than the 4 MiB the lab reads");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert_eq!(read_text(&p, 10).unwrap_err().to_string(), "not UTF-8 text");
    }
}
