//! Webhook delivery: a JSON POST, retried with exponential backoff on a connection error,
//! a timeout or a non-2xx answer.

use std::time::Duration;

use serde::Serialize;

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The first wait between attempts; each further wait doubles.
const BACKOFF: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs `body` to `url`, trying `1 + retries` times at most; returns every attempt.
pub async fn deliver(url: &str, body: &serde_json::Value, retries: u32) -> Vec<Attempt> {
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Attempt {
                attempt: 1,
                status: None,
                error: Some(format!("cannot build an HTTP client: {e}")),
            }];
        }
    };
    let mut out = Vec::new();
    let mut wait = BACKOFF;
    for attempt in 1..=retries + 1 {
        let a = match client.post(url).json(body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                Attempt {
                    attempt,
                    status: Some(status),
                    error: (!(200..300).contains(&status))
                        .then(|| format!("the receiver answered {status}")),
                }
            }
            Err(e) => Attempt {
                attempt,
                status: None,
                error: Some(if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }),
            },
        };
        let done = a.delivered();
        out.push(a);
        if done {
            break;
        }
        if attempt <= retries {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    out
}
