//! The LDAP codec: ldap3_proto's, with one repair. ldap3_proto reads filter assertion
//! values as UTF-8 text, so a search for a binary value — `(objectGUID=\5a\f3…)`, how Connect
//! finds an object by mS-DS-ConsistencyGuid — would fail to decode and cost the client its
//! connection. AD compares such values as bytes. Before ldap3_proto sees a search, filter
//! values that are not UTF-8 are rewritten to [`BINARY_MARK`] + hex, which
//! [`crate::filter::assertion_bytes`] turns back into the bytes the client sent.

use std::io;

use bytes::{Buf, BytesMut};
use ldap3_lber::common::TagClass;
use ldap3_lber::parse::{DEFAULT_MAX_BER_DEPTH, Parser};
use ldap3_lber::structure::{PL, StructureTag};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::LdapMsg;
use tokio_util::codec::{Decoder, Encoder};

/// Starts a filter value that stood for bytes which are not UTF-8 (a noncharacter: no
/// client sends it in text).
pub const BINARY_MARK: char = '\u{FDD0}';

pub struct AdCodec {
    inner: LdapCodec,
    max_ber_size: usize,
}

impl AdCodec {
    pub fn new(max_ber_size: usize) -> AdCodec {
        AdCodec { inner: LdapCodec::new(Some(max_ber_size), None), max_ber_size }
    }
}

/// The protocolOp tag of a SearchRequest, and where its filter sits.
const SEARCH_REQUEST: u64 = 3;
const FILTER_INDEX: usize = 6;

impl Decoder for AdCodec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, io::Error> {
        // refuse a PDU by the length it claims, before buffering any of it
        if let Some(claimed) = claimed_length(buf)
            && claimed > self.max_ber_size
        {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "lber request too large"));
        }
        if buf.len() > self.max_ber_size * 2 {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "lber buffer is too large"));
        }
        let mut parser = Parser::new(DEFAULT_MAX_BER_DEPTH);
        let (size, mut msg) = match parser.parse(buf) {
            Ok((rem, msg)) => (buf.len() - rem.len(), msg),
            Err(ldap3_lber::Err::Incomplete(_)) => return Ok(None),
            Err(_) => return Err(io::Error::other("lber parser")),
        };
        if size > self.max_ber_size {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, "lber request too large"));
        }
        buf.advance(size);
        // messageID is INTEGER (0 .. maxInt): ldap3_proto would cut a larger one to 32 bits
        if let PL::C(parts) = &msg.payload
            && let Some(StructureTag { class: TagClass::Universal, id: 2, payload: PL::P(id) }) = parts.first()
            && !message_id_in_range(id)
        {
            return Err(io::Error::new(io::ErrorKind::InvalidData, BAD_MESSAGE_ID));
        }
        if let PL::C(parts) = &mut msg.payload
            && let Some(op) = parts.get_mut(1)
            && op.class == TagClass::Application
            && op.id == SEARCH_REQUEST
            && let PL::C(fields) = &mut op.payload
            && let Some(filter) = fields.get_mut(FILTER_INDEX)
        {
            mark_binary_values(filter);
        }
        LdapMsg::try_from(msg).map_err(io::Error::other).map(Some)
    }
}

/// Why a PDU with a messageID outside 0 .. 2³¹−1 is refused (RFC 4511 4.1.1.1).
pub const BAD_MESSAGE_ID: &str = "messageID out of range";

/// A BER INTEGER's content octets hold a value in 0 ..= i32::MAX.
fn message_id_in_range(content: &[u8]) -> bool {
    match content {
        [] => false,
        [first, ..] if first & 0x80 != 0 => false,
        _ => {
            let significant: Vec<u8> = content.iter().copied().skip_while(|b| *b == 0).collect();
            significant.len() < 4 || (significant.len() == 4 && significant[0] < 0x80)
        }
    }
}

/// The whole PDU's size as its SEQUENCE header claims it (tag, length octets and content),
/// once the header is in; None before that, or for an indefinite length (which the parser
/// refuses on its own).
fn claimed_length(buf: &[u8]) -> Option<usize> {
    let first = *buf.get(1)?;
    if first & 0x80 == 0 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 {
        return None;
    }
    if n > 8 {
        return Some(usize::MAX);
    }
    let octets = buf.get(2..2 + n)?;
    let len = octets.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
    Some(usize::try_from(len).unwrap_or(usize::MAX).saturating_add(2 + n))
}

impl Encoder<LdapMsg> for AdCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> io::Result<()> {
        self.inner.encode(msg, buf)
    }
}

/// Rewrites, in place, every primitive value under a filter that is not UTF-8.
fn mark_binary_values(tag: &mut StructureTag) {
    match &mut tag.payload {
        PL::C(children) => children.iter_mut().for_each(mark_binary_values),
        PL::P(bytes) => {
            if std::str::from_utf8(bytes).is_err() {
                let mut text = String::from(BINARY_MARK);
                for b in bytes.iter() {
                    text.push_str(&format!("{b:02x}"));
                }
                *bytes = text.into_bytes();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_claimed_length_is_refused_before_it_is_buffered() {
        let mut c = AdCodec::new(1024);
        // SEQUENCE, length in 4 octets: 0x7fffffff (2 GiB), and nothing more yet
        let mut buf = BytesMut::from(&[0x30u8, 0x84, 0x7f, 0xff, 0xff, 0xff][..]);
        let e = c.decode(&mut buf).expect_err("refused at the header");
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        // a small claimed length just waits for more
        let mut buf = BytesMut::from(&[0x30u8, 0x81, 0x20, 0x02][..]);
        assert!(c.decode(&mut buf).expect("incomplete").is_none());
    }

    #[test]
    fn message_ids_outside_0_to_max_int_are_refused() {
        for (id, ok) in [
            (&[0x00u8][..], true),
            (&[0x7f, 0xff, 0xff, 0xff][..], true),
            (&[0x00, 0x80, 0x00, 0x00, 0x00][..], false), // 2^31
            (&[0xff][..], false),                         // -1
            (&[0x01, 0x00, 0x00, 0x00, 0x00][..], false),
            (&[][..], false),
        ] {
            assert_eq!(message_id_in_range(id), ok, "{id:02x?}");
        }
        let mut c = AdCodec::new(1024);
        // an unbind request with messageID 2^31
        let mut buf = BytesMut::from(&[0x30u8, 0x09, 0x02, 0x05, 0x00, 0x80, 0x00, 0x00, 0x00, 0x42, 0x00][..]);
        let e = c.decode(&mut buf).expect_err("protocol error");
        assert_eq!(e.to_string(), BAD_MESSAGE_ID);
    }
    use ldap3_proto::proto::{LdapDerefAliases, LdapFilter, LdapOp, LdapSearchRequest, LdapSearchScope};

    #[test]
    fn a_binary_filter_value_survives_decoding() {
        // what a client sends for (objectGUID=\ff\fe\00\01): the raw bytes in the filter
        let req = LdapMsg {
            msgid: 7,
            op: LdapOp::SearchRequest(LdapSearchRequest {
                base: "DC=x".into(),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::Equality("objectGUID".into(), "PLACEHOLDER".into()),
                attrs: vec![],
            }),
            ctrl: vec![],
        };
        // swap the text for bytes that are not UTF-8 in the BER tree, then encode it
        let mut tag: StructureTag = req.into();
        fn swap(t: &mut StructureTag) {
            match &mut t.payload {
                PL::C(cs) => cs.iter_mut().for_each(swap),
                PL::P(b) if b.as_slice() == b"PLACEHOLDER" => *b = vec![0xff, 0xfe, 0x00, 0x01],
                PL::P(_) => {}
            }
        }
        swap(&mut tag);
        let mut fixed = BytesMut::new();
        ldap3_lber::write::encode_into(&mut fixed, tag).unwrap();
        // ldap3_proto alone gives up on it
        assert!(LdapCodec::new(None, None).decode(&mut fixed.clone()).is_err());
        let msg = AdCodec::new(1 << 16).decode(&mut fixed).unwrap().unwrap();
        let LdapOp::SearchRequest(s) = msg.op else { panic!("not a search") };
        let LdapFilter::Equality(a, v) = s.filter else { panic!("not an equality") };
        assert_eq!(a, "objectGUID");
        assert_eq!(crate::filter::assertion_bytes(&v).as_ref(), &[0xff, 0xfe, 0x00, 0x01]);
        // plain text values are left alone
        assert_eq!(crate::filter::assertion_bytes("User1").as_ref(), b"User1");
    }
}
