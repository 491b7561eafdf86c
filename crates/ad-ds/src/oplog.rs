//! The DC's recent operations, as an administrator's diagnostics would list them: who, what,
//! and the answer — for the lab dashboard. Passwords never enter it: a bind's credential and
//! every unicodePwd / userPassword value are `***`.

use std::collections::VecDeque;
use std::sync::Mutex;

use ldap3_proto::proto::LdapOp;
use ldap3_proto::proto::{LdapBindCred, LdapFilter, LdapModifyType, LdapSearchScope};
use ldap3_proto::{LdapMsg, LdapResultCode};

/// How many operations the DC remembers.
const KEPT: usize = 200;

#[derive(Clone, Debug)]
pub struct Operation {
    pub seq: u64,
    /// The client's address and port, as a DC's diagnostics (events 1644, 2889) name it.
    pub client: std::net::SocketAddr,
    /// The bound identity before the request (`anonymous`, or a DN).
    pub who: String,
    pub request: String,
    /// The result code's name and the diagnostic, for what has one.
    pub result: String,
}

#[derive(Default)]
pub struct OpLog {
    ops: Mutex<VecDeque<Operation>>,
}

impl OpLog {
    pub fn record(&self, client: std::net::SocketAddr, who: String, request: String, result: String) {
        let (who, request, result) = (clip(who), clip(request), clip(result));
        let mut ops = self.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = ops.back().map(|o| o.seq + 1).unwrap_or(1);
        ops.push_back(Operation { seq, client, who, request, result });
        if ops.len() > KEPT {
            ops.pop_front();
        }
    }

    /// The kept operations, oldest first.
    pub fn recent(&self) -> Vec<Operation> {
        self.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

/// The longest text one field of a kept operation holds: a request may carry megabytes (a
/// DN, a value), the log keeps the start of it.
pub const FIELD_KEPT: usize = 512;

/// The start of `s`, in a string of its own: truncating `s` would keep its whole allocation
/// (200 kept binds with a 9 MiB DN pinned 2 GiB).
fn clip(s: String) -> String {
    if s.len() <= FIELD_KEPT {
        return s;
    }
    let mut end = FIELD_KEPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

/// A password attribute, whatever its options (`unicodePwd;binary`) or case.
fn secret(attr: &str) -> bool {
    let name = attr.split(';').next().unwrap_or(attr);
    name.eq_ignore_ascii_case("unicodePwd") || name.eq_ignore_ascii_case("userPassword")
}

fn filter(f: &LdapFilter) -> String {
    match f {
        LdapFilter::And(v) => format!("(&{})", v.iter().map(filter).collect::<String>()),
        LdapFilter::Or(v) => format!("(|{})", v.iter().map(filter).collect::<String>()),
        LdapFilter::Not(f) => format!("(!{})", filter(f)),
        LdapFilter::Equality(a, v) => format!("({a}={})", if secret(a) { "***" } else { v }),
        LdapFilter::Substring(a, _) => format!("({a}=…*)"),
        LdapFilter::GreaterOrEqual(a, v) => format!("({a}>={})", if secret(a) { "***" } else { v }),
        LdapFilter::LessOrEqual(a, v) => format!("({a}<={})", if secret(a) { "***" } else { v }),
        LdapFilter::Present(a) => format!("({a}=*)"),
        LdapFilter::Approx(a, v) => format!("({a}~={})", if secret(a) { "***" } else { v }),
        LdapFilter::Extensible(_) => "(…:rule:=…)".into(),
    }
}

fn values(attr: &str, vals: &[Vec<u8>]) -> String {
    if secret(attr) {
        return "***".into();
    }
    vals.iter()
        .map(|v| match std::str::from_utf8(v) {
            Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
            _ => format!("<{} bytes>", v.len()),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A request as one line (None for what is not worth listing: unbind, abandon).
pub fn request(op: &LdapOp) -> Option<String> {
    Some(match op {
        LdapOp::BindRequest(b) => match &b.cred {
            LdapBindCred::Simple(p) if p.is_empty() => format!("bind {} (no password)", b.dn),
            LdapBindCred::Simple(_) => format!("bind {} ***", b.dn),
            _ => format!("bind {} (SASL)", b.dn),
        },
        LdapOp::SearchRequest(s) => {
            let scope = match s.scope {
                LdapSearchScope::Base => "base",
                LdapSearchScope::OneLevel => "one",
                LdapSearchScope::Subtree => "sub",
                LdapSearchScope::Children => "children",
            };
            format!(
                "search {} {scope} {} [{}]",
                if s.base.is_empty() { "(rootDSE)" } else { &s.base },
                filter(&s.filter),
                s.attrs.join(",")
            )
        }
        LdapOp::ModifyRequest(m) => {
            let changes: Vec<String> = m
                .changes
                .iter()
                .map(|c| {
                    let op = match c.operation {
                        LdapModifyType::Add => "add",
                        LdapModifyType::Delete => "delete",
                        LdapModifyType::Replace => "replace",
                        _ => "modify",
                    };
                    format!("{op} {}={}", c.modification.atype, values(&c.modification.atype, &c.modification.vals))
                })
                .collect();
            format!("modify {}: {}", m.dn, changes.join(", "))
        }
        LdapOp::AddRequest(a) => {
            let attrs: Vec<String> = a.attributes.iter().map(|x| format!("{}={}", x.atype, values(&x.atype, &x.vals))).collect();
            format!("add {}: {}", a.dn, attrs.join(", "))
        }
        LdapOp::DelRequest(dn) => format!("delete {dn}"),
        LdapOp::ModifyDNRequest(m) => {
            format!("modrdn {} to {}{}", m.dn, m.newrdn, m.new_superior.as_ref().map(|s| format!(",{s}")).unwrap_or_default())
        }
        LdapOp::CompareRequest(c) => format!("compare {} {}", c.dn, c.atype),
        LdapOp::ExtendedRequest(e) => format!("extended {}", e.name),
        _ => return None,
    })
}

/// The answer to a request: the last message's result (a search's entries are counted).
pub fn result(msgs: &[LdapMsg]) -> String {
    let entries = msgs.iter().filter(|m| matches!(m.op, LdapOp::SearchResultEntry(_))).count();
    let res = msgs.iter().rev().find_map(|m| match &m.op {
        LdapOp::BindResponse(b) => Some(&b.res),
        LdapOp::SearchResultDone(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::AddResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => Some(r),
        LdapOp::ExtendedResponse(e) => Some(&e.res),
        _ => None,
    });
    let Some(r) = res else { return String::new() };
    let code = match r.code {
        LdapResultCode::Success => "success".to_string(),
        ref c => format!("{c:?}"),
    };
    let mut out = if r.message.is_empty() { code } else { format!("{code}: {}", r.message.trim()) };
    if matches!(msgs.last().map(|m| &m.op), Some(LdapOp::SearchResultDone(_))) {
        out = format!("{entries} entries; {out}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: std::net::SocketAddr = std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 50000));
    use ldap3_proto::proto::{LdapBindRequest, LdapModify, LdapModifyRequest, LdapPartialAttribute};

    #[test]
    fn attribute_options_and_filters_do_not_hide_a_password() {
        let modify = LdapOp::ModifyRequest(LdapModifyRequest {
            dn: "CN=User1".into(),
            changes: vec![LdapModify {
                operation: LdapModifyType::Replace,
                modification: LdapPartialAttribute { atype: "UNICODEPWD;binary".into(), vals: vec![b"\"Secret-Pass-1\"".to_vec()] },
            }],
        });
        let line = request(&modify).unwrap();
        assert!(!line.contains("Secret-Pass-1"), "{line}");
        for f in [
            LdapFilter::Equality("unicodePwd;binary".into(), "Secret-Pass-1".into()),
            LdapFilter::GreaterOrEqual("userPassword".into(), "Secret-Pass-1".into()),
            LdapFilter::Approx("unicodepwd".into(), "Secret-Pass-1".into()),
        ] {
            assert!(!filter(&f).contains("Secret-Pass-1"), "{}", filter(&f));
        }
    }

    #[test]
    fn each_kept_operation_is_bounded() {
        let log = OpLog::default();
        for _ in 0..KEPT + 50 {
            log.record(LOOPBACK, "anonymous".into(), format!("bind {} ***", "x".repeat(9 << 20)), "success".into());
        }
        let ops = log.recent();
        assert_eq!(ops.len(), KEPT);
        assert!(ops.iter().all(|o| o.request.len() < FIELD_KEPT + 64), "clipped");
        assert!(ops[0].request.ends_with("more bytes)"));
        // what a kept entry owns, not only what it shows (issue 31, item 1)
        let kept = log.ops.lock().unwrap();
        let owned: usize = kept.iter().map(|o| o.who.capacity() + o.request.capacity() + o.result.capacity()).sum();
        assert!(owned < KEPT * 3 * (FIELD_KEPT + 64), "the log owns {owned} bytes for {KEPT} entries");
    }

    #[test]
    fn passwords_never_reach_the_log() {
        let bind = LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: "TESTLAB\\User1".into(),
            cred: LdapBindCred::Simple("Summer-Lake-41".into()),
        });
        assert_eq!(request(&bind).unwrap(), "bind TESTLAB\\User1 ***");
        let modify = LdapOp::ModifyRequest(LdapModifyRequest {
            dn: "CN=User1".into(),
            changes: vec![
                LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: LdapPartialAttribute { atype: "unicodePwd".into(), vals: vec![b"\"New-Pass-1\"".to_vec()] },
                },
                LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: LdapPartialAttribute { atype: "lockoutTime".into(), vals: vec![b"0".to_vec()] },
                },
            ],
        });
        assert_eq!(request(&modify).unwrap(), "modify CN=User1: replace unicodePwd=***, replace lockoutTime=0");
        let log = OpLog::default();
        for i in 0..KEPT + 5 {
            log.record(LOOPBACK, "anonymous".into(), format!("op {i}"), "success".into());
        }
        let kept = log.recent();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].request, "op 5", "the oldest go first");
    }
}
