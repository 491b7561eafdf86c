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
    /// The largest request before a bind and after.
    unbound_max: usize,
    bound_max: usize,
    /// The DC's budget for receive buffers, and what this connection's buffer holds of it.
    budget: Option<(std::sync::Arc<ReceiveBudget>, Held)>,
}

/// The memory a DC's connections hold in their receive buffers (allocated capacity, not the
/// bytes in them), all together and for connections that have not bound: a client sending
/// most of a large request and then nothing holds that memory until the idle limit, so many
/// such clients could take all of it. Past the budget, the connection whose buffer would
/// grow is closed (a Notice of Disconnection first), and the others keep working.
#[derive(Debug)]
pub struct ReceiveBudget {
    limit: usize,
    unbound_limit: usize,
    held: std::sync::atomic::AtomicUsize,
    unbound: std::sync::atomic::AtomicUsize,
}

/// What one connection's buffer holds of its DC's [`ReceiveBudget`].
#[derive(Debug, Default)]
struct Held {
    bytes: usize,
    bound: bool,
}

impl ReceiveBudget {
    pub fn new(limit: usize, unbound_limit: usize) -> ReceiveBudget {
        ReceiveBudget { limit, unbound_limit: unbound_limit.min(limit), held: Default::default(), unbound: Default::default() }
    }

    /// Bytes held now by every connection's buffer.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes held now by the buffers of connections that have not bound.
    pub fn held_unbound(&self) -> usize {
        self.unbound.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn take(counter: &std::sync::atomic::AtomicUsize, n: usize, limit: usize) -> bool {
        use std::sync::atomic::Ordering;
        counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| h.checked_add(n).filter(|t| *t <= limit)).is_ok()
    }

    /// Moves `held` to `bytes`; false (and nothing moved) when that is past a limit.
    fn hold(&self, held: &mut Held, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        if bytes == held.bytes {
            return true; // every decode of a buffer that did not grow
        }
        if bytes < held.bytes {
            self.held.fetch_sub(held.bytes - bytes, Ordering::Relaxed);
            if !held.bound {
                self.unbound.fetch_sub(held.bytes - bytes, Ordering::Relaxed);
            }
            held.bytes = bytes;
            return true;
        }
        let more = bytes - held.bytes;
        if !held.bound && !ReceiveBudget::take(&self.unbound, more, self.unbound_limit) {
            return false;
        }
        if !ReceiveBudget::take(&self.held, more, self.limit) {
            if !held.bound {
                self.unbound.fetch_sub(more, Ordering::Relaxed);
            }
            return false;
        }
        held.bytes = bytes;
        true
    }

    /// A connection has bound (or gone back to anonymous): its bytes move between the counts.
    fn rebind(&self, held: &mut Held, bound: bool) {
        use std::sync::atomic::Ordering;
        if held.bound != bound {
            if bound {
                self.unbound.fetch_sub(held.bytes, Ordering::Relaxed);
            } else {
                self.unbound.fetch_add(held.bytes, Ordering::Relaxed);
            }
            held.bound = bound;
        }
    }
}

/// Why a connection over its DC's receive budget is closed.
pub const BUDGET_SPENT: &str = "the DC's receive buffers are full";

/// Each connection's first bytes of buffer are not counted: however full the budget, a
/// bind or an ordinary request always gets in (the connection cap bounds these: 4,096 × 16
/// KiB = 64 MiB).
const UNCOUNTED: usize = 16 * 1024;

/// A receive buffer this large, once empty, is given back rather than kept for the
/// connection's life (a 10 MiB request would otherwise pin 10 MiB until the idle limit).
const KEEP_EMPTY_BUFFER: usize = 64 * 1024;

impl AdCodec {
    pub fn new(max_ber_size: usize) -> AdCodec {
        AdCodec {
            inner: LdapCodec::new(Some(max_ber_size), None),
            max_ber_size,
            unbound_max: max_ber_size,
            bound_max: max_ber_size,
            budget: None,
        }
    }

    /// A connection that has not bound (requests up to `unbound_max`) until
    /// [`AdCodec::set_bound`] (up to `bound_max`), its buffer's memory counted against `budget`.
    pub fn with_budget(unbound_max: usize, bound_max: usize, budget: std::sync::Arc<ReceiveBudget>) -> AdCodec {
        let inner = LdapCodec::new(Some(unbound_max), None);
        AdCodec { inner, max_ber_size: unbound_max, unbound_max, bound_max, budget: Some((budget, Held::default())) }
    }

    /// Whether the connection has bound: which limit applies and which share of the budget
    /// it draws on. (Called after every request; only a change does anything.)
    pub fn set_bound(&mut self, bound: bool) {
        let max = if bound { self.bound_max } else { self.unbound_max };
        if max != self.max_ber_size {
            self.max_ber_size = max;
            self.inner = LdapCodec::new(Some(max), None);
        }
        if let Some((budget, held)) = &mut self.budget {
            budget.rebind(held, bound);
        }
    }

    fn account(&mut self, buf: &BytesMut) -> io::Result<()> {
        if let Some((budget, held)) = &mut self.budget
            && !budget.hold(held, buf.capacity().saturating_sub(UNCOUNTED))
        {
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, BUDGET_SPENT));
        }
        Ok(())
    }
}

impl Drop for AdCodec {
    fn drop(&mut self) {
        if let Some((budget, held)) = &mut self.budget {
            budget.hold(held, 0);
        }
    }
}

/// The protocolOp tag of a SearchRequest, and where its filter sits.
const SEARCH_REQUEST: u64 = 3;
const FILTER_INDEX: usize = 6;

impl Decoder for AdCodec {
    type Item = LdapMsg;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, io::Error> {
        self.account(buf)?;
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
        if buf.is_empty() && buf.capacity() > KEEP_EMPTY_BUFFER {
            // tokio-util's own first size
            *buf = BytesMut::with_capacity(8 * 1024);
            self.account(buf)?;
        }
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
mod budget_tests {
    use super::*;

    /// Past the budget, decoding says so (the server sends it in its Notice of Disconnection).
    #[test]
    fn a_buffer_past_the_budget_is_refused_and_a_dropped_codec_gives_its_share_back() {
        let budget = std::sync::Arc::new(ReceiveBudget::new(64 * 1024, 32 * 1024));
        let mut anonymous = AdCodec::with_budget(128 * 1024, 10 * 1024 * 1024, budget.clone());
        let mut buf = BytesMut::with_capacity(40 * 1024);
        buf.extend_from_slice(&[0x30, 0x83, 0x00, 0x90, 0x00]); // a 36 KiB PDU's header
        assert!(anonymous.decode(&mut buf).unwrap().is_none(), "24 KiB counted: within the 32 KiB share");
        let mut bigger = BytesMut::with_capacity(80 * 1024);
        bigger.extend_from_slice(&buf);
        let e = anonymous.decode(&mut bigger).expect_err("64 KiB counted: past the unbound share");
        assert_eq!(e.to_string(), BUDGET_SPENT);
        anonymous.set_bound(true);
        assert!(anonymous.decode(&mut bigger).unwrap().is_none(), "bound: the whole budget");
        assert_eq!((budget.held(), budget.held_unbound()), (64 * 1024, 0));
        drop(anonymous);
        assert_eq!(budget.held(), 0);
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
