//! CDS Hooks 2.0 over FHIR R4, without IO: what a request must hold ([`request`]), how a
//! client proves who it is ([`jwt`]), which FHIR data a model's contract asks for
//! ([`prefetch`]), how FHIR resources become the model's named inputs ([`fhir`]) and what the
//! clinician is shown ([`card`]). The service crate does the fetching, scoring and recording.

pub mod card;
pub mod fhir;
pub mod jwt;
pub mod prefetch;
pub mod pruned;
pub mod request;

pub use card::{CardContext, Indicator};
pub use fhir::{Mapped, MappedFeature, map_inputs};
pub use request::{CdsRequest, FeedbackItem, FeedbackOutcome, RequestError};
