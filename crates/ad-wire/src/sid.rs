//! Security identifiers: `S-1-5-21-a-b-c-RID` as text and in AD's binary objectSid form.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sid {
    pub authority: u64,
    pub subs: Vec<u32>,
}

impl Sid {
    /// A domain SID: S-1-5-21-a-b-c.
    pub fn domain(parts: [u32; 3]) -> Sid {
        Sid { authority: 5, subs: vec![21, parts[0], parts[1], parts[2]] }
    }

    /// The built-in domain, S-1-5-32 (Administrators is S-1-5-32-544).
    pub fn builtin() -> Sid {
        Sid { authority: 5, subs: vec![32] }
    }

    pub fn child(&self, rid: u32) -> Sid {
        let mut subs = self.subs.clone();
        subs.push(rid);
        Sid { authority: self.authority, subs }
    }

    pub fn rid(&self) -> Option<u32> {
        (self.subs.len() > 1).then(|| *self.subs.last().expect("non-empty"))
    }

    pub fn parent(&self) -> Sid {
        Sid { authority: self.authority, subs: self.subs[..self.subs.len().saturating_sub(1)].to_vec() }
    }

    pub fn parse(s: &str) -> Option<Sid> {
        let mut parts = s.trim().split('-');
        if !parts.next()?.eq_ignore_ascii_case("S") || parts.next()? != "1" {
            return None;
        }
        let authority = parts.next()?.parse().ok()?;
        let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (!subs.is_empty() && subs.len() <= 15).then_some(Sid { authority, subs })
    }

    /// Binary form: revision, count, 48-bit big-endian authority, little-endian sub-authorities.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![1, self.subs.len() as u8];
        b.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.subs {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Sid> {
        if b.len() < 8 || b[0] != 1 {
            return None;
        }
        let n = b[1] as usize;
        if b.len() != 8 + 4 * n || n == 0 {
            return None;
        }
        let mut auth = [0u8; 8];
        auth[2..].copy_from_slice(&b[2..8]);
        let subs = b[8..].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Some(Sid { authority: u64::from_be_bytes(auth), subs })
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in &self.subs {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        let s = Sid::parse("S-1-5-21-3756111865-3274864801-1722483875-1137").unwrap();
        assert_eq!(s.rid(), Some(1137));
        assert_eq!(Sid::from_bytes(&s.to_bytes()).unwrap(), s);
        assert_eq!(s.to_string(), "S-1-5-21-3756111865-3274864801-1722483875-1137");
        // S-1-5-32-544 in binary, as AD returns it for BUILTIN\Administrators
        assert_eq!(Sid::builtin().child(544).to_bytes(), vec![1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0]);
        assert!(Sid::parse("S-1-5").is_none());
        assert!(Sid::from_bytes(&[1, 2, 0]).is_none());
    }
}
