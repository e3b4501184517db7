//! FHIR JSON as the mapping reads it: only the members named in [`READ_MEMBERS`], at every
//! depth, kept while parsing. An object is a short list of `(member, value)` pairs whose
//! names are the list's own `&'static str`s, so a prefetch of many Observations costs one
//! allocation per string, array and object, and none per member name or map node; what a
//! `serde_json::Value` tree of the same resources would cost several times over.
//!
//! [`Pruned::get`] answers only for listed members: the mapping cannot read a member that
//! parsing dropped (a debug build panics if it asks for one).

use std::collections::BTreeMap;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// Every member of FHIR JSON that the mapping reads, at any depth. Parsing keeps these and
/// drops the rest (narratives, meta, displays, categories, identifiers …); a mapping that
/// reads a new member must name it here. The test `pruned_resources_map_as_the_whole_ones`
/// parses every example file both ways.
pub const READ_MEMBERS: &[&str] = &[
    "resourceType",
    "id",
    "entry",
    "resource",
    "status",
    "code",
    "coding",
    "system",
    "subject",
    "reference",
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "start",
    "end",
    "issued",
    "component",
    "valueInteger",
    "valueQuantity",
    "value",
    "comparator",
    "unit",
    "birthDate",
    "gender",
];

/// A FHIR JSON value with only the [`READ_MEMBERS`]. Arrays, scalars and the nesting are as
/// parsed; members keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Pruned {
    Null,
    Bool(bool),
    Number(Number),
    String(Box<str>),
    Array(Vec<Pruned>),
    Object(Vec<(&'static str, Pruned)>),
}

fn member(name: &str) -> Option<&'static str> {
    READ_MEMBERS.iter().find(|m| **m == name).copied()
}

impl Pruned {
    /// The member `key` of an object (`None` for other values, or if it is absent).
    pub fn get(&self, key: &str) -> Option<&Pruned> {
        debug_assert!(
            member(key).is_some(),
            "`{key}` is not in READ_MEMBERS, so parsing drops it"
        );
        match self {
            Pruned::Object(m) => m.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Pruned::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Pruned::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Pruned]> {
        match self {
            Pruned::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Pruned::Null)
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Pruned::String(_))
    }

    /// `v` pruned: what parsing its text would give (a FHIR server's answer, read whole for
    /// its paging links).
    pub fn from_value(v: &Value) -> Pruned {
        match v {
            Value::Null => Pruned::Null,
            Value::Bool(b) => Pruned::Bool(*b),
            Value::Number(n) => Pruned::Number(n.clone()),
            Value::String(s) => Pruned::String(s.as_str().into()),
            Value::Array(a) => Pruned::Array(a.iter().map(Pruned::from_value).collect()),
            Value::Object(m) => Pruned::Object(
                m.iter()
                    .filter_map(|(k, v)| Some((member(k)?, Pruned::from_value(v))))
                    .collect(),
            ),
        }
    }

    /// As a `serde_json::Value` (for display and comparison).
    pub fn to_value(&self) -> Value {
        match self {
            Pruned::Null => Value::Null,
            Pruned::Bool(b) => Value::Bool(*b),
            Pruned::Number(n) => Value::Number(n.clone()),
            Pruned::String(s) => Value::String(s.to_string()),
            Pruned::Array(a) => Value::Array(a.iter().map(Pruned::to_value).collect()),
            Pruned::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| ((*k).to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Pruned {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pruned, D::Error> {
        d.deserialize_any(PrunedVisitor)
    }
}

/// A member name: the entry of [`READ_MEMBERS`] it equals, if any.
struct Member;

impl<'de> DeserializeSeed<'de> for Member {
    type Value = Option<&'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Member {
    type Value = Option<&'static str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(member(v))
    }
}

struct PrunedVisitor;

impl<'de> Visitor<'de> for PrunedVisitor {
    type Value = Pruned;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Pruned, E> {
        Ok(Pruned::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Pruned, E> {
        Ok(Pruned::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Pruned, E> {
        Ok(Pruned::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Pruned, E> {
        Ok(Number::from_f64(v).map_or(Pruned::Null, Pruned::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Pruned, E> {
        Ok(Pruned::String(v.into()))
    }
    fn visit_unit<E>(self) -> Result<Pruned, E> {
        Ok(Pruned::Null)
    }
    fn visit_none<E>(self) -> Result<Pruned, E> {
        Ok(Pruned::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Pruned, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pruned, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Pruned::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pruned, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key_seed(Member)? {
            match k {
                Some(k) => out.push((k, map.next_value()?)),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Pruned::Object(out))
    }
}

/// A request's `prefetch` member: an object of FHIR resources by key, each [`Pruned`];
/// `null`; or anything else, which the request refuses.
#[derive(Debug, Clone, PartialEq)]
pub enum PrunedByKey {
    Null,
    Object(BTreeMap<String, Pruned>),
    /// Not an object (its content is skipped).
    Other,
}

impl<'de> serde::Deserialize<'de> for PrunedByKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PrunedByKey, D::Error> {
        d.deserialize_any(ByKeyVisitor)
    }
}

struct ByKeyVisitor;

impl<'de> Visitor<'de> for ByKeyVisitor {
    type Value = PrunedByKey;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Other)
    }
    fn visit_unit<E>(self) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Null)
    }
    fn visit_none<E>(self) -> Result<PrunedByKey, E> {
        Ok(PrunedByKey::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PrunedByKey, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PrunedByKey, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(PrunedByKey::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PrunedByKey, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let v: Pruned = map.next_value()?;
            out.insert(k, v);
        }
        Ok(PrunedByKey::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parsing_keeps_the_read_members_in_order_and_drops_the_rest() {
        let text = r#"{"resourceType":"Observation","text":{"div":"<p>x</p>"},"id":"o1",
            "valueQuantity":{"value":7.5,"unit":"mmol/L","extension":[1,2]},"status":"final"}"#;
        let p: Pruned = serde_json::from_str(text).unwrap();
        let Pruned::Object(m) = &p else {
            panic!("not an object")
        };
        let names: Vec<&str> = m.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["resourceType", "id", "valueQuantity", "status"]);
        assert_eq!(
            p.get("valueQuantity").and_then(|q| q.get("value")),
            Some(&Pruned::Number(Number::from_f64(7.5).unwrap()))
        );
        assert_eq!(p.get("status").and_then(Pruned::as_str), Some("final"));
        assert_eq!(p.get("code"), None);
        let whole: Value = serde_json::from_str(text).unwrap();
        // A `Value` holds its members sorted, so compare as values.
        assert_eq!(Pruned::from_value(&whole).to_value(), p.to_value());
        assert_eq!(
            p.to_value(),
            serde_json::json!({"resourceType": "Observation", "id": "o1",
                "valueQuantity": {"value": 7.5, "unit": "mmol/L"}, "status": "final"})
        );
    }

    #[test]
    fn a_prefetch_is_an_object_by_key_null_or_refused() {
        let by_key = |s: &str| serde_json::from_str::<PrunedByKey>(s).unwrap();
        assert_eq!(by_key("null"), PrunedByKey::Null);
        assert_eq!(by_key("[1, {\"a\": 2}]"), PrunedByKey::Other);
        assert_eq!(by_key("\"Patient/1\""), PrunedByKey::Other);
        let PrunedByKey::Object(m) =
            by_key(r#"{"anyKey": {"resourceType": "Patient"}, "n": null}"#)
        else {
            panic!("not an object")
        };
        assert_eq!(
            m["anyKey"].get("resourceType").and_then(Pruned::as_str),
            Some("Patient")
        );
        assert!(m["n"].is_null());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not in READ_MEMBERS")]
    fn reading_a_member_that_parsing_drops_is_a_mistake() {
        let p: Pruned = serde_json::from_str(r#"{"text": "x"}"#).unwrap();
        let _ = p.get("text");
    }
}
