//! The audit chain: events, their canonical hash, and verification of a sequence of events.
//!
//! Each event's hash is the SHA-256 of this canonical JSON object (keys in this order, no
//! white space; strings escaped as in [`crate::canonical`]; `payload` is the event's canonical
//! payload text verbatim):
//!
//! ```text
//! {"action":…,"actor":…,"at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","payload":{…},"prev_hash":"<64 hex>","seq":N,"subject":…}
//! ```
//!
//! The first event's `prev_hash` is [`GENESIS_HASH`] (64 zeros). Because each hash covers the
//! previous one, editing, deleting, inserting or reordering any event breaks every link after
//! it, and [`ChainVerifier`] names the first sequence number where the chain stops holding.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{to_canonical_string, write_string};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::UserName;
use crate::time::Timestamp;

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: Digest = Digest::from_bytes([0; 32]);

/// An event about to be appended: the store assigns its sequence number, time and hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    pub actor: UserName,
    pub action: String,
    pub subject: String,
    pub payload: Value,
}

impl NewAuditEvent {
    /// `action` is `<noun>.<past-verb>` (`release.registered`); `subject` names the object
    /// (`release:<id>`, `model:<name>`).
    pub fn new(
        actor: &UserName,
        action: &str,
        subject: impl Into<String>,
        payload: Value,
    ) -> Result<Self> {
        let ok = action.split_once('.').is_some_and(|(n, v)| {
            !n.is_empty()
                && !v.is_empty()
                && action
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        });
        if !ok {
            return Err(Error::invalid(format!(
                "audit action `{action}` is not `<noun>.<past-verb>`"
            )));
        }
        Ok(NewAuditEvent {
            actor: actor.clone(),
            action: action.to_owned(),
            subject: subject.into(),
            payload,
        })
    }

    pub fn canonical_payload(&self) -> String {
        to_canonical_string(&self.payload)
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// Canonical JSON text of the payload, exactly as hashed.
    pub payload: String,
    pub prev_hash: Digest,
    pub hash: Digest,
}

/// Computes an event's hash from its fields (see the module documentation).
pub fn event_hash(
    seq: i64,
    at: Timestamp,
    actor: &str,
    action: &str,
    subject: &str,
    payload: &str,
    prev_hash: &Digest,
) -> Digest {
    let mut s = String::with_capacity(192 + payload.len() + subject.len());
    s.push_str("{\"action\":");
    write_string(action, &mut s);
    s.push_str(",\"actor\":");
    write_string(actor, &mut s);
    s.push_str(",\"at\":\"");
    s.push_str(&at.to_string());
    s.push_str("\",\"payload\":");
    s.push_str(payload);
    s.push_str(",\"prev_hash\":\"");
    s.push_str(&prev_hash.to_hex());
    s.push_str("\",\"seq\":");
    s.push_str(&seq.to_string());
    s.push_str(",\"subject\":");
    write_string(subject, &mut s);
    s.push('}');
    Digest::of(s.as_bytes())
}

impl AuditEvent {
    /// The hash this event's fields imply (compare with `hash`).
    pub fn computed_hash(&self) -> Digest {
        event_hash(
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.subject,
            &self.payload,
            &self.prev_hash,
        )
    }

    /// Builds the next event after `prev` (`None` for the first event).
    pub fn next(prev: Option<(i64, Digest)>, at: Timestamp, e: &NewAuditEvent) -> AuditEvent {
        let (seq, prev_hash) = match prev {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS_HASH),
        };
        let payload = e.canonical_payload();
        let hash = event_hash(
            seq,
            at,
            e.actor.as_str(),
            &e.action,
            &e.subject,
            &payload,
            &prev_hash,
        );
        AuditEvent {
            seq,
            at,
            actor: e.actor.as_str().to_owned(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            payload,
            prev_hash,
            hash,
        }
    }
}

/// An event's fields as stored text, borrowed: the fast path for verifying long chains
/// without decoding each event into owned values.
#[derive(Clone, Copy, Debug)]
pub struct RawEvent<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub payload: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl RawEvent<'_> {
    /// The hash the stored fields imply, by the same encoding as [`event_hash`]. The stored
    /// time text is hashed as it is: if it was rewritten in another format the hash differs.
    pub fn computed_hash(&self) -> Digest {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        let mut esc = String::new();
        let mut put_str = |h: &mut Sha256, s: &str| {
            if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                h.update(b"\"");
                h.update(s.as_bytes());
                h.update(b"\"");
            } else {
                esc.clear();
                write_string(s, &mut esc);
                h.update(esc.as_bytes());
            }
        };
        h.update(b"{\"action\":");
        put_str(&mut h, self.action);
        h.update(b",\"actor\":");
        put_str(&mut h, self.actor);
        h.update(b",\"at\":\"");
        h.update(self.at.as_bytes());
        h.update(b"\",\"payload\":");
        h.update(self.payload.as_bytes());
        h.update(b",\"prev_hash\":\"");
        h.update(self.prev_hash.as_bytes());
        h.update(b"\",\"seq\":");
        h.update(decimal(self.seq, &mut [0; 20]));
        h.update(b",\"subject\":");
        put_str(&mut h, self.subject);
        h.update(b"}");
        Digest::from_bytes(h.finalize().into())
    }
}

/// Writes `n` in decimal into `buf`, as `n.to_string()` would, without allocating.
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

impl ChainVerifier {
    /// Checks one stored event given its recomputed hash (see [`RawEvent::computed_hash`]).
    pub fn check_raw(&mut self, e: &RawEvent<'_>, computed: &Digest) -> Result<(), ChainBreak> {
        if e.seq != self.expected_seq {
            return Err(ChainBreak::Gap {
                expected: self.expected_seq,
                found: e.seq,
            });
        }
        if !self.prev_hash.matches_hex(e.prev_hash) {
            return Err(ChainBreak::BrokenLink { seq: e.seq });
        }
        if !computed.matches_hex(e.hash) {
            return Err(ChainBreak::HashMismatch { seq: e.seq });
        }
        self.prev_hash = *computed;
        self.expected_seq += 1;
        Ok(())
    }
}

/// Why the chain stopped holding at an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainBreak {
    /// The event's fields do not hash to its stored hash: it was edited.
    HashMismatch { seq: i64 },
    /// The event does not point at the previous event's hash: something before it was
    /// deleted, inserted or reordered.
    BrokenLink { seq: i64 },
    /// A sequence number is missing or repeated.
    Gap { expected: i64, found: i64 },
}

impl ChainBreak {
    /// The first sequence number at which the chain fails.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::HashMismatch { seq } | ChainBreak::BrokenLink { seq } => *seq,
            ChainBreak::Gap { expected, .. } => *expected,
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainBreak::HashMismatch { seq } => {
                write!(
                    f,
                    "event {seq} does not match its hash: it was altered after it was written"
                )
            }
            ChainBreak::BrokenLink { seq } => write!(
                f,
                "event {seq} does not follow the event before it: events were deleted, inserted or reordered"
            ),
            ChainBreak::Gap { expected, found } => {
                write!(
                    f,
                    "event {expected} is missing (the next event found is {found})"
                )
            }
        }
    }
}

/// Checks events one after another, in sequence order.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: Digest,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: GENESIS_HASH,
        }
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier for the events after event `seq`, taking `hash` as that event's hash.
    /// Checking a long chain in independent ranges starts each range here, with the stored
    /// hash of the event before it; verifying that event (in the range before) checks that
    /// hash, so together the ranges check exactly what one pass from the start would.
    pub fn after(seq: i64, hash: Digest) -> Self {
        ChainVerifier {
            expected_seq: seq + 1,
            prev_hash: hash,
        }
    }

    /// Checks one event whose hash has been recomputed by the caller as `computed`
    /// (so that hashing can run in parallel while links are checked in order).
    pub fn check(&mut self, e: &AuditEvent, computed: &Digest) -> Result<(), ChainBreak> {
        if e.seq != self.expected_seq {
            return Err(ChainBreak::Gap {
                expected: self.expected_seq,
                found: e.seq,
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainBreak::BrokenLink { seq: e.seq });
        }
        if *computed != e.hash {
            return Err(ChainBreak::HashMismatch { seq: e.seq });
        }
        self.prev_hash = e.hash;
        self.expected_seq += 1;
        Ok(())
    }

    /// Number of events verified so far.
    pub fn verified(&self) -> i64 {
        self.expected_seq - 1
    }

    /// The hash of the last verified event (the head).
    pub fn head(&self) -> Digest {
        self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<AuditEvent> {
        let actor = UserName::parse("alice").unwrap();
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let e = NewAuditEvent::new(
                &actor,
                "thing.happened",
                format!("thing:{i}"),
                json!({"i": i}),
            )
            .unwrap();
            let prev = out.last().map(|p| (p.seq, p.hash));
            out.push(AuditEvent::next(prev, Timestamp::from_micros(i * 1000), &e));
        }
        out
    }

    fn verify(events: &[AuditEvent]) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for e in events {
            v.check(e, &e.computed_hash())?;
        }
        Ok(v.verified())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(20)), Ok(20));
    }

    #[test]
    fn edit_delete_reorder_insert_are_detected_at_the_right_seq() {
        let mut edited = chain(10);
        edited[4].payload = "{\"i\":40}".into();
        assert_eq!(verify(&edited), Err(ChainBreak::HashMismatch { seq: 5 }));

        let mut deleted = chain(10);
        deleted.remove(6);
        assert_eq!(
            verify(&deleted),
            Err(ChainBreak::Gap {
                expected: 7,
                found: 8
            })
        );

        let mut reordered = chain(10);
        reordered.swap(2, 3);
        assert_eq!(verify(&reordered).unwrap_err().seq(), 3);

        // Renumbering after a deletion keeps seq gapless but breaks the link.
        let mut renumbered = chain(10);
        renumbered.remove(6);
        for e in renumbered.iter_mut().skip(6) {
            e.seq -= 1;
        }
        assert_eq!(verify(&renumbered), Err(ChainBreak::BrokenLink { seq: 7 }));
    }

    #[test]
    fn raw_hash_equals_owned_hash() {
        let mut events = chain(3);
        events[1].subject = "tricky \"subject\" \\ é".into();
        events[1].hash = events[1].computed_hash();
        for e in &events {
            let at = e.at.to_string();
            let (p, h) = (e.prev_hash.to_hex(), e.hash.to_hex());
            let raw = RawEvent {
                seq: e.seq,
                at: &at,
                actor: &e.actor,
                action: &e.action,
                subject: &e.subject,
                payload: &e.payload,
                prev_hash: &p,
                hash: &h,
            };
            assert_eq!(raw.computed_hash(), e.computed_hash());
        }
    }

    #[test]
    fn decimal_matches_to_string() {
        for n in [0, 1, 9, 10, 99, 100, 12345, -1, -10, i64::MAX, i64::MIN] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[test]
    fn verifying_in_ranges_finds_what_one_pass_finds() {
        let mut events = chain(12);
        events[6].payload = "{\"i\":60}".into();
        let one_pass = verify(&events);
        // Split after event 6: the second range starts from event 6's stored hash.
        let mut first = ChainVerifier::new();
        for e in &events[..6] {
            first.check(e, &e.computed_hash()).unwrap();
        }
        let mut second = ChainVerifier::after(6, events[5].hash);
        let r = events[6..]
            .iter()
            .try_for_each(|e| second.check(e, &e.computed_hash()));
        assert_eq!(r, one_pass.map(|_| ()));
        assert_eq!(r, Err(ChainBreak::HashMismatch { seq: 7 }));
    }

    #[test]
    fn actions_are_noun_dot_verb() {
        let a = UserName::parse("bob").unwrap();
        assert!(NewAuditEvent::new(&a, "release.registered", "x", json!({})).is_ok());
        assert!(NewAuditEvent::new(&a, "registered", "x", json!({})).is_err());
        assert!(NewAuditEvent::new(&a, "Release.Registered", "x", json!({})).is_err());
    }
}
