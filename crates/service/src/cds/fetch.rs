//! Fetching what the EHR did not prefetch: FHIR searches on the request's `fhirServer` with
//! its bearer token, and client key sets from their registered `jku` URL. Every fetch runs
//! inside a deadline; answers are size-limited and parsed as JSON, never trusted further.

use std::time::{Duration, Instant};

use serde_json::Value;

/// Largest FHIR answer read, in bytes.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Most search pages followed (`Bundle.link` `next`).
const MAX_PAGES: usize = 5;

/// Why a fetch gave nothing usable; `code` is stable and safe to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub code: &'static str,
    pub message: String,
}

impl FetchError {
    fn new(code: &'static str, message: impl Into<String>) -> FetchError {
        FetchError {
            code,
            message: message.into(),
        }
    }

    /// The FHIR server refused the token: the data cannot be had (412), unlike a timeout.
    pub fn is_refusal(&self) -> bool {
        self.code == "fhir_forbidden"
    }
}

/// An HTTP client for FHIR servers and key sets.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|e| FetchError::new("http_client", e.to_string()))?;
        Ok(Fetcher { client })
    }

    async fn get_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        deadline: Instant,
    ) -> Result<Value, FetchError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FetchError::new("fhir_timeout", "the time budget was spent"));
        }
        let mut req = self
            .client
            .get(url)
            .header("accept", "application/fhir+json, application/json")
            .timeout(left);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let fut = async {
            let resp = req.send().await.map_err(classify)?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(FetchError::new(
                    "fhir_forbidden",
                    format!("the FHIR server refused access ({})", status.as_u16()),
                ));
            }
            if !status.is_success() {
                return Err(FetchError::new(
                    "fhir_error",
                    format!("the FHIR server answered {}", status.as_u16()),
                ));
            }
            if resp.content_length().is_some_and(|n| n as usize > MAX_BODY) {
                return Err(FetchError::new(
                    "fhir_too_large",
                    "the answer is larger than 16 MiB",
                ));
            }
            let bytes = resp.bytes().await.map_err(classify)?;
            if bytes.len() > MAX_BODY {
                return Err(FetchError::new(
                    "fhir_too_large",
                    "the answer is larger than 16 MiB",
                ));
            }
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|_| FetchError::new("fhir_malformed", "the answer is not JSON"))
        };
        match tokio::time::timeout(left, fut).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::new(
                "fhir_timeout",
                "the FHIR server did not answer in time",
            )),
        }
    }

    /// Runs a FHIR query (`Observation?patient=…` or `Patient/123`) on `base`, following
    /// search pages within the deadline. Returns the resource or the searchset Bundles.
    pub async fn fhir(
        &self,
        base: &str,
        query: &str,
        bearer: Option<&str>,
        deadline: Instant,
    ) -> Result<Vec<Value>, FetchError> {
        let mut url = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            query.trim_start_matches('/')
        );
        let mut pages = Vec::new();
        for _ in 0..MAX_PAGES {
            let v = self.get_json(&url, bearer, deadline).await?;
            if v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
                return Err(FetchError::new(
                    "fhir_error",
                    "the FHIR server answered an OperationOutcome",
                ));
            }
            let next = v
                .get("link")
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .find(|x| x.get("relation").and_then(Value::as_str) == Some("next"))
                })
                .and_then(|x| x.get("url"))
                .and_then(Value::as_str)
                .map(str::to_string);
            pages.push(v);
            match next {
                // Only pages on the same server are followed: the token is not sent elsewhere.
                Some(n) if n.starts_with(base) => url = n,
                _ => break,
            }
        }
        Ok(pages)
    }

    /// Reads a key set from a registered `jku` URL.
    pub async fn jwks(&self, url: &str, timeout: Duration) -> Result<String, FetchError> {
        let v = self.get_json(url, None, Instant::now() + timeout).await?;
        Ok(v.to_string())
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::new("fhir_timeout", "the FHIR server did not answer in time")
    } else if e.is_connect() {
        FetchError::new("fhir_unreachable", "the FHIR server could not be reached")
    } else {
        FetchError::new("fhir_error", "the FHIR request failed")
    }
}
