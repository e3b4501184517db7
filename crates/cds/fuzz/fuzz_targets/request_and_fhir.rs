//! Fuzz target: arbitrary bytes as a CDS Hooks request, feedback, bearer token or FHIR data
//! must parse or be refused without panicking, and mapping whatever parses must terminate.
#![no_main]

use std::sync::OnceLock;

use vigil_domain::{FeatureContract, Timestamp};

fn contract() -> &'static FeatureContract {
    static C: OnceLock<FeatureContract> = OnceLock::new();
    C.get_or_init(|| {
        FeatureContract::from_toml(include_str!("../../../../examples/deterioration/contract.toml"))
            .expect("the example contract")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for hook in ["patient-view", "order-select", "order-sign"] {
        if let Ok(r) = vigil_cds::CdsRequest::parse(data, hook) {
            let mut rs = Vec::new();
            for v in r.prefetch.values() {
                vigil_cds::fhir::collect(v, &mut rs);
            }
            let now = Timestamp::from_unix_seconds(1_700_000_000);
            let _ = vigil_cds::map_inputs(contract(), &rs, r.patient_id().unwrap_or(""), now);
            for t in vigil_cds::prefetch::templates(contract()) {
                let _ = vigil_cds::prefetch::resolve(&t.query, &r.context);
            }
        }
    }
    let _ = vigil_cds::request::parse_feedback(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vigil_cds::jwt::decode(s);
        let _ = vigil_cds::jwt::Jwks::parse(s);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        // A FHIR server's answer: read whole, then pruned.
        let p = vigil_cds::pruned::Pruned::from_value(&v);
        let mut rs = Vec::new();
        vigil_cds::fhir::collect(&p, &mut rs);
        let _ = vigil_cds::map_inputs(contract(), &rs, "example", Timestamp::from_unix_seconds(1_700_000_000));
    }
});
