//! Load generator for `bench/cds/run.sh`: `setup HOME DATA` makes a home with the example
//! model in production and a client registered with two keys — the specification's P-384
//! key (ES384) and an RSA-2048 key generated here (RS384, its private half kept in the home);
//! `load URL DATA RATE SECS [rs384|es384 HOME]` pre-mints one token per call (distinct `jti`s),
//! measures what verifying one costs, then posts patient-view calls with a 30-observation
//! prefetch at a fixed rate (open loop, latency measured from each call's scheduled time):
//! first a warm-up of `VIGIL_BENCH_WARMUP` seconds (default 1; the first connections, the
//! server's new log and caches), reported on its own, then without a pause the SECS measured,
//! for which it prints throughput and percentiles (and, with `VIGIL_BENCH_LATENCIES=FILE`,
//! every call's latency in schedule order, warm-up included). Beside the store it also times
//! a 4 KiB `fdatasync` every 20 ms during the run, since every answered call waits for a
//! commit's sync, and before and after the run a walk through memory (see `memory_check`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{Value, json};
use vigil_cds::jwt::{self, Es384Signer, Jwk, Jwks, KeySource, b64url, sign_with};
use vigil_domain::governance::Decision;
use vigil_domain::policy::{DataCheckSummary, EvaluationSummary, SubgroupMetrics};
use vigil_domain::role::Role;
use vigil_domain::{Digest, ReleaseId, Stage, Timestamp, UserName};
use vigil_service::cds::ClientKeys;
use vigil_service::governance::{BoxFuture, EvidenceSource};
use vigil_service::{
    CreateModel, Location, RegisterDataset, RegisterRelease, Result, SystemClock, Vigil,
};

const ISS: &str = "https://fhir-ehr.example.com/";
const MODEL: &str = "deterioration-risk";
const SYNTHEA: &str =
    "fhir/synthea/covid_juvenile_Denisha680_Keeling57_6a93e0ad-9bd0-6d85-34a7-015186f7880a.json";

#[derive(Default)]
struct Recorded;

impl EvidenceSource for Recorded {
    fn evaluations<'a>(
        &'a self,
        r: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>> {
        let mut metrics = BTreeMap::new();
        metrics.insert("auroc".to_string(), 0.82);
        metrics.insert("auroc.ci_low".to_string(), 0.75);
        metrics.insert("calibration.slope".to_string(), 1.02);
        metrics.insert("calibration.ece".to_string(), 0.02);
        let sub = |g: &str, v: f64| SubgroupMetrics {
            column: "sex".into(),
            group: g.into(),
            n: 500,
            too_small: false,
            metrics: [("auroc".to_string(), v)].into_iter().collect(),
        };
        let e = EvaluationSummary {
            id: format!("{}-eval", r.short()),
            digest: Digest::of(r.to_string().as_bytes()),
            dataset: None,
            at: Timestamp::parse("2020-01-01").unwrap(),
            metrics,
            subgroups: vec![sub("f", 0.80), sub("m", 0.84)],
        };
        Box::pin(async move { Ok(vec![e]) })
    }
    fn data_checks<'a>(&'a self, _: &'a ReleaseId) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>> {
        let c = DataCheckSummary {
            id: "checks-1".into(),
            digest: Digest::of(b"checks"),
            dataset: vigil_domain::SnapshotId::from_digest(Digest::of(b"ds")),
            at: Timestamp::parse("2020-01-01").unwrap(),
            blocking_failures: Vec::new(),
        };
        Box::pin(async move { Ok(vec![c]) })
    }
    fn shadow_predictions<'a>(
        &'a self,
        _: &'a ReleaseId,
        _: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async { Ok(10_000) })
    }
}

fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

static DATA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The operating system's random source, for generating the RSA key.
struct OsRandom;

impl rsa::rand_core::RngCore for OsRandom {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        getrandom::fill(dest).unwrap();
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> std::result::Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for OsRandom {}

const RSA_KID: &str = "bench-rs384";
const RSA_FILE: &str = "bench-rs384-key.json";

fn hex(b: &rsa::BigUint) -> String {
    b.to_bytes_be().iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> rsa::BigUint {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    rsa::BigUint::from_bytes_be(&bytes)
}

/// A new RSA-2048 key: its private parts (with the CRT exponents and coefficient) written to
/// `home`, its public JWK returned.
fn new_rsa_key(home: &std::path::Path) -> Value {
    let mut key = rsa::RsaPrivateKey::new(&mut OsRandom, 2048).unwrap();
    key.precompute().unwrap();
    let primes = key.primes();
    let private = json!({
        "n": hex(key.n()), "e": hex(key.e()), "d": hex(key.d()),
        "p": hex(&primes[0]), "q": hex(&primes[1]),
        "dp": hex(key.dp().unwrap()), "dq": hex(key.dq().unwrap()),
        "qinv": hex(&key.crt_coefficient().unwrap()),
    });
    std::fs::write(home.join(RSA_FILE), private.to_string()).unwrap();
    json!({"kty": "RSA", "kid": RSA_KID, "alg": "RS384", "use": "sig",
           "n": b64url(&key.n().to_bytes_be()), "e": b64url(&key.e().to_bytes_be())})
}

/// The key `new_rsa_key` wrote, as ring signs with it (its RSA signatures take a fraction of
/// the `rsa` crate's time, which matters when minting one token per call).
fn rsa_signer(home: &std::path::Path) -> (ring::rsa::KeyPair, Value) {
    let v: Value = serde_json::from_slice(&std::fs::read(home.join(RSA_FILE)).unwrap()).unwrap();
    let b = |k: &str| unhex(v[k].as_str().unwrap()).to_bytes_be();
    let (n, e) = (b("n"), b("e"));
    let key = ring::rsa::KeyPair::from_components(&ring::rsa::KeyPairComponents {
        public_key: ring::rsa::PublicKeyComponents { n: &n, e: &e },
        d: b("d"),
        p: b("p"),
        q: b("q"),
        dP: b("dp"),
        dQ: b("dq"),
        qInv: b("qinv"),
    })
    .unwrap();
    let jwk =
        json!({"kty": "RSA", "kid": RSA_KID, "alg": "RS384", "n": b64url(&n), "e": b64url(&e)});
    (key, jwk)
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(DATA.get().unwrap().join(rel)).unwrap()).unwrap()
}

/// The vital signs of a Synthea encounter (re-pointed at the spec example's patient 1288992,
/// aged 94) with creatinine and white cells measured the same morning.
fn observations() -> Vec<Value> {
    let b = read_json(SYNTHEA);
    let mut out: Vec<Value> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .filter(|r| {
            r["resourceType"] == "Observation" && r["valueQuantity"].is_object()
                || r["component"].is_array()
        })
        .map(|mut r| {
            r["subject"] = json!({"reference": "Patient/1288992"});
            r
        })
        .collect();
    let lab = |id: &str, code: &str, v: f64, unit: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": "Patient/1288992"},
               "effectiveDateTime": "2020-03-03T10:00:00Z",
               "valueQuantity": {"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    out.push(lab("cr-1", "2160-0", 1.1, "mg/dL"));
    out.push(lab("wbc-1", "6690-2", 9.5, "10*3/uL"));
    out
}

async fn setup(home: PathBuf) {
    let rsa_jwk = new_rsa_key(&home);
    let loc = Location {
        home,
        database_url: None,
    };
    let (vigil, _) = Vigil::init(&loc, Arc::new(SystemClock), &user("admin"))
        .await
        .unwrap();
    let vigil = vigil.with_evidence(Arc::new(Recorded));
    let ds = user("ds");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/deterioration");
    let data = vigil
        .register_dataset(
            &ds,
            RegisterDataset {
                path: root.join("train.csv"),
                name: "train".into(),
                manifest_toml: None,
            },
        )
        .await
        .unwrap();
    vigil
        .create_model(
            &ds,
            CreateModel {
                name: MODEL.into(),
                intended_use_toml: std::fs::read_to_string(root.join("intended-use.toml")).unwrap(),
                risk_tier: 1,
                clinical_owner: "Dr Ward".into(),
                technical_owner: "ML team".into(),
            },
        )
        .await
        .unwrap();
    let r = vigil
        .register_release(
            &ds,
            RegisterRelease {
                model: MODEL.into(),
                artifact: std::fs::read(root.join("model.onnx")).unwrap(),
                contract: std::fs::read(root.join("contract.toml")).unwrap(),
                training_data: data.value.id.to_string(),
                code_commit: None,
                environment: None,
                hyperparameters: None,
                thresholds: vec![0.3],
                changelog: None,
                reference_predictions: None,
            },
        )
        .await
        .unwrap()
        .value
        .id
        .to_string();
    vigil
        .promote(&ds, &r, Stage::Validated, "evaluated")
        .await
        .unwrap();
    vigil
        .sign_off(
            &user("rev"),
            &r,
            Role::ClinicalReviewer,
            Decision::Approved,
            "ok",
        )
        .await
        .unwrap();
    vigil
        .promote(&user("gov"), &r, Stage::Approved, "signed off")
        .await
        .unwrap();
    vigil
        .promote(&user("op"), &r, Stage::Shadow, "shadow")
        .await
        .unwrap();
    vigil
        .promote(&user("op"), &r, Stage::Production, "live")
        .await
        .unwrap();
    let jwks = std::fs::read_to_string(
        DATA.get()
            .unwrap()
            .join("cds-hooks/v3ballot__30_json-web-key-set-public-key.json"),
    )
    .unwrap();
    let mut jwks: Value = serde_json::from_str(&jwks).unwrap();
    jwks["keys"].as_array_mut().unwrap().push(rsa_jwk);
    vigil
        .add_cds_client(&user("op"), ISS, ClientKeys::Jwks(jwks.to_string()))
        .await
        .unwrap();
}

/// 30 Observations: the encounter's vitals at several times through the day, and labs.
fn prefetch_bundle(now: Timestamp) -> Value {
    let base = observations();
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < 30 {
        for o in &base {
            if out.len() >= 30 {
                break;
            }
            let mut o = o.clone();
            let t = Timestamp::from_unix_seconds(now.as_unix_seconds() - 600 * (i + 1));
            o["id"] = json!(format!("obs-{}", out.len()));
            o["effectiveDateTime"] = json!(t.to_string());
            out.push(o);
        }
        i += 1;
    }
    json!({"resourceType": "Bundle", "type": "searchset", "entry": out.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

/// Signs client tokens with one of the registered keys.
enum Minter {
    Es384(Es384Signer),
    Rs384(ring::rsa::KeyPair, Value),
}

impl Minter {
    fn alg(&self) -> &'static str {
        match self {
            Minter::Es384(_) => "ES384",
            Minter::Rs384(..) => "RS384",
        }
    }

    fn sign(&self, claims: &Value) -> String {
        match self {
            Minter::Es384(s) => s.sign(claims, None),
            Minter::Rs384(k, _) => sign_with(
                &json!({"alg": "RS384", "typ": "JWT", "kid": RSA_KID}),
                claims,
                |msg| {
                    let mut sig = vec![0; k.public().modulus_len()];
                    k.sign(
                        &ring::signature::RSA_PKCS1_SHA384,
                        &ring::rand::SystemRandom::new(),
                        msg,
                        &mut sig,
                    )
                    .unwrap();
                    sig
                },
            ),
        }
    }
}

async fn load(url: String, rate: u64, secs: u64, alg: &str, home: Option<PathBuf>) {
    let minter = match alg {
        "es384" => {
            let jwk: Jwk = serde_json::from_value(read_json(
                "cds-hooks/v3ballot__31_json-web-key-private-key.json",
            ))
            .unwrap();
            Minter::Es384(Es384Signer::from_private_jwk(&jwk).unwrap())
        }
        _ => {
            let (k, jwk) = rsa_signer(home.as_deref().expect("rs384 needs the HOME of `setup`"));
            Minter::Rs384(k, jwk)
        }
    };
    let warmup: u64 = std::env::var("VIGIL_BENCH_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let warm = (rate * warmup) as usize;
    let n = (rate * (warmup + secs)) as usize;
    let now = SystemClock.now_ts();
    let aud = format!("{url}/cds-services/{MODEL}");
    let mut req = read_json("cds-hooks/v3ballot__02_example.json");
    req.as_object_mut().unwrap().remove("fhirServer");
    req.as_object_mut().unwrap().remove("fhirAuthorization");
    req["prefetch"]["observations"] = prefetch_bundle(now);
    for k in [
        "heart_rate",
        "resp_rate",
        "temperature",
        "spo2",
        "sbp",
        "lactate",
        "creatinine",
        "wbc",
    ] {
        req["prefetch"][k] = json!({"resourceType": "Bundle", "type": "searchset"});
    }
    // Tokens are minted before the run (one per call, each with its own jti): signing is
    // the EHR's cost, not Vigil's.
    let pid = std::process::id();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n.div_ceil(threads);
    let (minter, req, aud) = (&minter, &req, &aud);
    let bodies: Vec<(String, String)> = std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut req = req.clone();
                    (t * per..((t + 1) * per).min(n))
                        .map(|i| {
                            let t = minter.sign(&json!({"iss": ISS, "aud": aud,
                                "iat": now.as_unix_seconds(), "exp": now.as_unix_seconds() + 280,
                                "jti": format!("bench-{pid}-{i}")}));
                            req["hookInstance"] = json!(format!("bench-{pid}-{i}"));
                            (t, req.to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let aud = aud.clone();
    // One request as it is posted, for `parse_cost` (what parsing it costs).
    if let (Some(h), Some((_, body))) = (&home, bodies.first()) {
        std::fs::write(h.join("request.json"), body).unwrap();
    }
    // What verifying one token costs the server (the same checks, in this process).
    let mut keys: Value = read_json("cds-hooks/v3ballot__30_json-web-key-set-public-key.json");
    if let Minter::Rs384(_, jwk) = minter {
        keys["keys"].as_array_mut().unwrap().push(jwk.clone());
    }
    let keys = Jwks::parse(&keys.to_string()).unwrap();
    let sample = bodies.len().min(200);
    let t0 = Instant::now();
    for (t, _) in &bodies[..sample] {
        let u = jwt::decode(t).unwrap();
        let expect = jwt::Expect {
            audience: &aud,
            now: now.as_unix_seconds(),
            leeway_secs: 30,
        };
        jwt::verify(&u, KeySource::Static(&keys), expect).unwrap();
    }
    println!(
        "tokens {}: verifying one costs {:.1} µs (this process, one core)",
        minter.alg(),
        t0.elapsed().as_secs_f64() * 1e6 / sample.max(1) as f64
    );
    let memory_before = memory_check();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let start = Instant::now() + StdDuration::from_millis(200);
    // Calls are started on schedule by a thread of their own, sleeping with the operating
    // system's timer: tokio's timer rounds every sleep up to the next millisecond, which
    // would add up to a millisecond of the generator's own lateness to every latency.
    // Latency is still measured from each call's scheduled time.
    let rt = tokio::runtime::Handle::current();
    let probe = home
        .as_deref()
        .map(|h| DiskProbe::start(h.join("fsync-probe")));
    let pacer = std::thread::spawn(move || {
        let mut tasks = Vec::with_capacity(n);
        for (i, (token, body)) in bodies.into_iter().enumerate() {
            let at = start + StdDuration::from_nanos(i as u64 * 1_000_000_000 / rate);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let client = client.clone();
            let aud = aud.clone();
            tasks.push(rt.spawn(call(client, aud, token, body, at)));
        }
        tasks
    });
    let tasks = tokio::task::spawn_blocking(move || pacer.join().unwrap())
        .await
        .unwrap();
    let mut lat = Vec::with_capacity(n);
    let mut oks = Vec::with_capacity(n);
    for t in tasks {
        let (d, good) = t.await.unwrap();
        lat.push(d);
        oks.push(good);
    }
    let wall = start.elapsed();
    let ok_warm = oks[..warm].iter().filter(|g| **g).count();
    let ok = oks[warm..].iter().filter(|g| **g).count();
    // Each call's latency in the order the calls were scheduled, to see when the slow ones
    // came (a stall, the first connections, a steady queue).
    if let Ok(path) = std::env::var("VIGIL_BENCH_LATENCIES") {
        let lines: String = lat
            .iter()
            .map(|d| format!("{:.3}\n", d.as_secs_f64() * 1e3))
            .collect();
        std::fs::write(path, lines).unwrap();
    }
    if let Some(probe) = probe {
        probe.report();
    }
    println!(
        "memory check (a random walk through 16 MiB; slower means busier neighbours): {:.0} ns a step before the run, {:.0} after",
        memory_before,
        memory_check()
    );
    let (mut first, mut measured) = (lat[..warm].to_vec(), lat[warm..].to_vec());
    first.sort();
    measured.sort();
    let p = |lat: &[StdDuration], q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    if warm > 0 {
        println!(
            "warm-up, {warm} calls in the first {warmup} s: ok {ok_warm}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            p(&first, 0.50),
            p(&first, 0.99),
            p(&first, 1.0)
        );
    }
    // Throughput over the measured calls' own span: from the first one's scheduled time.
    let span = wall.saturating_sub(StdDuration::from_nanos(warm as u64 * 1_000_000_000 / rate));
    println!(
        "calls {} at {rate}/s: ok {ok}, throughput {:.0}/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n - warm,
        ok as f64 / span.as_secs_f64(),
        p(&measured, 0.50),
        p(&measured, 0.90),
        p(&measured, 0.99),
        p(&measured, 1.0)
    );
}

/// Nanoseconds per step of a chase through 16 MiB of memory in random order, the median of
/// three runs of a million steps: other tenants of a shared machine that take its caches and
/// memory bandwidth show here as well as in the calls' latency.
fn memory_check() -> f64 {
    const STEPS: u32 = 1_000_000;
    let len = 4 << 20;
    // A single cycle through every slot (Sattolo's shuffle), so the chase never settles in
    // a short loop that fits in cache.
    let mut next: Vec<u32> = (0..len as u32).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..len).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        next.swap(i, (x % i as u64) as usize);
    }
    let mut times: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let mut at = 0u32;
            for _ in 0..STEPS {
                at = next[at as usize];
            }
            std::hint::black_box(at);
            t.elapsed().as_secs_f64() * 1e9 / f64::from(STEPS)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[1]
}

/// What the disk under the store does while the calls run: 4 KiB written and
/// `fdatasync`ed every 20 ms to a file beside the database. Every answered call waits for
/// one commit's sync, so the disk's own slow syncs bound the calls' tail.
struct DiskProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<StdDuration>>,
}

impl DiskProbe {
    fn start(path: PathBuf) -> DiskProbe {
        use std::io::Write;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::File::create(&path).unwrap();
            let mut syncs = Vec::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                f.write_all(&[0u8; 4096]).unwrap();
                f.sync_data().unwrap();
                syncs.push(t.elapsed());
                std::thread::sleep(StdDuration::from_millis(20));
            }
            let _ = std::fs::remove_file(&path);
            syncs
        });
        DiskProbe { stop, thread }
    }

    fn report(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut d = self.thread.join().unwrap();
        if d.is_empty() {
            return;
        }
        d.sort();
        let ms = |x: StdDuration| x.as_secs_f64() * 1e3;
        let slow = d.iter().filter(|x| ms(**x) > 5.0).count();
        println!(
            "disk beside the store during the run: {} syncs of 4 KiB, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {slow} over 5 ms",
            d.len(),
            ms(d[d.len() / 2]),
            ms(d[(d.len() * 99 / 100).min(d.len() - 1)]),
            ms(d[d.len() - 1])
        );
    }
}

/// One call, started at (or just after) its scheduled time `at`: its latency from `at`, and
/// whether it was answered 200.
async fn call(
    client: reqwest::Client,
    aud: String,
    token: String,
    body: String,
    at: Instant,
) -> (StdDuration, bool) {
    let r = client
        .post(&aud)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let ok = match r {
        Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
        Err(_) => false,
    };
    (at.elapsed(), ok)
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for SystemClock {
    fn now_ts(&self) -> Timestamp {
        use vigil_service::Clock;
        self.now()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("setup") => {
            DATA.set(PathBuf::from(&args[3])).unwrap();
            setup(PathBuf::from(&args[2])).await;
        }
        Some("load") => {
            DATA.set(PathBuf::from(&args[3])).unwrap();
            load(
                args[2].clone(),
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
                args.get(6).map_or("rs384", String::as_str),
                args.get(7).map(PathBuf::from),
            )
            .await;
        }
        _ => eprintln!(
            "usage: bench_cds setup HOME DATA | load URL DATA RATE SECS [rs384|es384 HOME]"
        ),
    }
}
