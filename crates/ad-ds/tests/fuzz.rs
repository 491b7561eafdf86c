//! A bounded fuzz of the LDAP front (issue #15): arbitrary bytes, and valid requests with
//! bytes flipped, cut or inserted, go through the codec and — whatever decodes — through the
//! session and its filter conversion and evaluation, as a connection would feed them. Nothing
//! may panic, every decoded request gets an answer, and no decoded message keeps a messageID
//! outside 0 ..= 2³¹−1. (`PROPTEST_CASES` raises the count; CI runs the default.)

use std::sync::RwLock;

use ad_ds::codec::AdCodec;
use ad_ds::domain::system;
use ad_ds::password::unicode_pwd;
use ad_ds::session::Session;
use ad_ds::{Directory, DomainConfig};
use bytes::BytesMut;
use clock::Clock;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapModify, LdapModifyRequest, LdapModifyType, LdapMsg, LdapOp,
    LdapPartialAttribute, LdapSearchRequest, LdapSearchScope, LdapSubstringFilter,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn directory() -> RwLock<Directory> {
    let cfg = DomainConfig {
        dns_name: "fuzz.example".into(),
        netbios: "FUZZ".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 5,
        admin_password: "Fuzz-Admin-Pass-1".into(),
    };
    let mut d = Directory::new(cfg, Clock::frozen(Clock::lab_epoch()));
    let attrs = vec![
        ("objectClass".into(), vec![b"user".to_vec()]),
        ("sAMAccountName".into(), vec![b"fuzz".to_vec()]),
        ("unicodePwd".into(), vec![unicode_pwd("Kq7-Blue-Harbor")]),
        ("userAccountControl".into(), vec![b"512".to_vec()]),
    ];
    let tls = ad_ds::directory::OpContext::TLS;
    d.add(&system(), "CN=Fuzz,CN=Users,DC=fuzz,DC=example", attrs, tls).unwrap();
    RwLock::new(d)
}

/// Well-formed requests to mutate: binds, a modify of unicodePwd, searches with filters of
/// every kind (nested, substrings, extensible matches, AD's matching rules).
fn seeds() -> Vec<Vec<u8>> {
    let filter = LdapFilter::And(vec![
        LdapFilter::Equality("objectClass".into(), "user".into()),
        LdapFilter::Or(vec![
            LdapFilter::Substring(
                "sAMAccountName".into(),
                LdapSubstringFilter { initial: Some("fu".into()), any: vec!["z".into()], final_: Some("z".into()) },
            ),
            LdapFilter::Not(Box::new(LdapFilter::Present("lockoutTime".into()))),
            LdapFilter::GreaterOrEqual("uSNChanged".into(), "1".into()),
            LdapFilter::Extensible(ldap3_proto::proto::LdapMatchingRuleAssertion {
                matching_rule: Some("1.2.840.113556.1.4.803".into()),
                type_: Some("userAccountControl".into()),
                match_value: "2".into(),
                dn_attributes: false,
            }),
        ]),
    ]);
    let ops = vec![
        LdapOp::BindRequest(LdapBindRequest { version: 3, dn: "FUZZ\\fuzz".into(), cred: LdapBindCred::Simple("Kq7-Blue-Harbor".into()) }),
        LdapOp::SearchRequest(LdapSearchRequest {
            base: "DC=fuzz,DC=example".into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 10,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: vec!["sAMAccountName".into(), "objectGUID".into()],
        }),
        LdapOp::ModifyRequest(LdapModifyRequest {
            dn: "CN=Fuzz,CN=Users,DC=fuzz,DC=example".into(),
            changes: vec![LdapModify {
                operation: LdapModifyType::Replace,
                modification: LdapPartialAttribute { atype: "unicodePwd".into(), vals: vec![unicode_pwd("Zt4-Green-Meadow")] },
            }],
        }),
    ];
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            let mut buf = BytesMut::new();
            AdCodec::new(1 << 20).encode(LdapMsg { msgid: i as i32 + 1, op, ctrl: vec![] }, &mut buf).unwrap();
            buf.to_vec()
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
}

fn mutate(mut pdu: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let n = pdu.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if let Some(b) = pdu.get_mut(i % n) {
                    *b ^= x;
                }
            }
            Mutation::Cut(i) => pdu.truncate(i % n),
            Mutation::Insert(i, bytes) => {
                let at = (i % n).min(pdu.len());
                pdu.splice(at..at, bytes.iter().copied());
            }
        }
    }
    pdu
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Cut),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

/// Feeds `bytes` to a connection's codec and session: every decoded request is answered,
/// nothing panics. Returns how many requests decoded.
fn feed(dir: &RwLock<Directory>, bytes: &[u8]) -> usize {
    let mut codec = AdCodec::new(64 * 1024);
    let mut session = Session::new(true, true);
    let mut buf = BytesMut::from(bytes);
    let mut decoded = 0;
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => {
                assert!(msg.msgid >= 0, "a negative messageID got through: {}", msg.msgid);
                decoded += 1;
                let reply = session.handle(dir, msg);
                assert!(!reply.msgs.is_empty() || decoded > 0);
            }
            // incomplete, or refused: a connection would wait, or hang up
            Ok(None) | Err(_) => return decoded,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = directory();
        feed(&dir, &bytes);
        // and with a SEQUENCE tag in front, so more of it reaches the parser
        let mut framed = vec![0x30, bytes.len().min(127) as u8];
        framed.extend(&bytes);
        feed(&dir, &framed);
    }

    #[test]
    fn mutated_requests_never_panic(which in 0usize..3, ms in prop::collection::vec(mutation(), 1..5)) {
        let dir = directory();
        let pdu = mutate(seeds()[which].clone(), &ms);
        feed(&dir, &pdu);
    }
}

#[test]
fn the_seeds_themselves_decode_and_are_answered() {
    let dir = directory();
    for pdu in seeds() {
        assert_eq!(feed(&dir, &pdu), 1);
    }
}
