//! Client authentication as CDS Hooks 2.0 requires it: a JWT signed by a registered client.
//!
//! [`decode`] splits a bearer token and parses its header and claims without trusting them;
//! the caller looks the client up by `iss`, then [`verify`] checks the signature against the
//! client's keys (ES384, RS384, ES256, RS256; `none` and every HMAC algorithm are refused),
//! the `kid`, the `jku` against the registered URL, `aud` against the exact service URL that
//! was called, `exp` and `iat` with a small leeway. Remembering `jti`s until they expire is the
//! caller's part (it needs a store). Every failure has a stable [`AuthError::code`].

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Largest token accepted, in bytes: far above any real one, small enough to parse cheaply.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Tolerated clock difference with the client, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;
/// The specification lets a token live at most five minutes from when it is presented.
pub const MAX_LIFETIME_SECS: i64 = 300;

/// Why a token was refused: a stable code and a message without the token's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub code: &'static str,
    pub message: String,
}

impl AuthError {
    pub fn new(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AuthError {}

/// The signature algorithms a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    ES256,
    ES384,
    RS256,
    RS384,
}

impl Alg {
    fn parse(s: &str) -> Result<Alg, AuthError> {
        match s {
            "ES384" => Ok(Alg::ES384),
            "ES256" => Ok(Alg::ES256),
            "RS384" => Ok(Alg::RS384),
            "RS256" => Ok(Alg::RS256),
            "none" | "None" | "NONE" => Err(AuthError::new(
                "alg_not_allowed",
                "unsigned tokens (alg none) are refused",
            )),
            s if s.starts_with("HS") => Err(AuthError::new(
                "alg_not_allowed",
                format!("{s} is a shared-secret algorithm; clients sign with ES384 or RS384"),
            )),
            other => Err(AuthError::new(
                "alg_not_allowed",
                format!("algorithm `{other}` is not accepted (ES384, RS384, ES256, RS256)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
        }
    }
}

/// The JOSE header fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub jku: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
}

/// `aud` may be one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// The claims of a CDS Hooks client token, not yet trusted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub exp: Option<f64>,
    #[serde(default)]
    pub iat: Option<f64>,
    #[serde(default)]
    pub jti: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
}

/// A parsed token whose signature and claims have not been checked yet.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub header: Header,
    pub claims: Claims,
    signing_input: String,
    signature: Vec<u8>,
}

impl Unverified {
    /// The issuer the token claims; only an allowlist lookup may use it before [`verify`].
    pub fn issuer(&self) -> Option<&str> {
        self.claims.iss.as_deref()
    }
}

fn malformed(m: impl Into<String>) -> AuthError {
    AuthError::new("token_malformed", m)
}

/// Splits and parses a compact JWS without checking anything it says.
pub fn decode(token: &str) -> Result<Unverified, AuthError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed("the token is longer than 16 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a token has three base64url parts separated by dots",
        ));
    };
    let hb = B64
        .decode(h)
        .map_err(|_| malformed("the header is not base64url"))?;
    let pb = B64
        .decode(p)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let signature = B64
        .decode(s)
        .map_err(|_| malformed("the signature is not base64url"))?;
    let header: Header = serde_json::from_slice(&hb)
        .map_err(|e| malformed(format!("the header is not a JOSE header: {e}")))?;
    let claims: Claims = serde_json::from_slice(&pb)
        .map_err(|e| malformed(format!("the payload is not a claims object: {e}")))?;
    Ok(Unverified {
        header,
        claims,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// One public key in JWK form (RFC 7517): EC P-256/P-384 or RSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// A private key's secret; refused in a key set given to Vigil.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses and checks a key set: every key usable for one accepted algorithm, every key
    /// with a `kid`, no private material.
    pub fn parse(text: &str) -> Result<Jwks, AuthError> {
        let set: Jwks = serde_json::from_str(text).map_err(|e| {
            AuthError::new(
                "jwks_invalid",
                format!("not a JWK Set ({{\"keys\": [...]}}): {e}"),
            )
        })?;
        if set.keys.is_empty() {
            return Err(AuthError::new("jwks_invalid", "the key set has no keys"));
        }
        for (i, k) in set.keys.iter().enumerate() {
            let bad = |m: String| AuthError::new("jwks_invalid", format!("key {i}: {m}"));
            if k.d.is_some() {
                return Err(bad(
                    "holds a private key (`d`); register only the public key".into(),
                ));
            }
            if k.kid.as_deref().is_none_or(str::is_empty) {
                return Err(bad("has no `kid`".into()));
            }
            if k.use_.as_deref().is_some_and(|u| u != "sig") {
                return Err(bad("is not a signature key (`use` is not \"sig\")".into()));
            }
            let alg = match (k.kty.as_str(), k.crv.as_deref()) {
                ("EC", Some("P-384")) => Alg::ES384,
                ("EC", Some("P-256")) => Alg::ES256,
                ("RSA", _) => Alg::RS384,
                (kty, crv) => {
                    return Err(bad(format!(
                        "key type {kty} {} is not supported (EC P-256, EC P-384, RSA)",
                        crv.unwrap_or("")
                    )));
                }
            };
            let alg = match (alg, k.alg.as_deref()) {
                (Alg::RS384, Some("RS256")) => Alg::RS256,
                (_, Some(a)) => Alg::parse(a).map_err(|e| bad(e.message))?,
                (a, None) => a,
            };
            check_key(k, alg).map_err(|e| bad(e.message))?;
        }
        Ok(set)
    }
}

fn b64_field<'a>(v: &'a Option<String>, name: &str) -> Result<Vec<u8>, AuthError> {
    let s: &'a str = v
        .as_deref()
        .ok_or_else(|| AuthError::new("key_invalid", format!("the key has no `{name}`")))?;
    B64.decode(s)
        .map_err(|_| AuthError::new("key_invalid", format!("`{name}` is not base64url")))
}

enum Key {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    /// Modulus and public exponent, big-endian, checked as ring requires.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

fn check_key(k: &Jwk, alg: Alg) -> Result<Key, AuthError> {
    let wrong = |m: &str| AuthError::new("key_invalid", m.to_string());
    match alg {
        Alg::ES256 | Alg::ES384 => {
            if k.kty != "EC" {
                return Err(wrong("an ES algorithm needs an EC key"));
            }
            let x = b64_field(&k.x, "x")?;
            let y = b64_field(&k.y, "y")?;
            match (alg, k.crv.as_deref()) {
                (Alg::ES384, Some("P-384")) if x.len() == 48 && y.len() == 48 => {
                    let pt = p384::EncodedPoint::from_affine_coordinates(
                        x.as_slice().into(),
                        y.as_slice().into(),
                        false,
                    );
                    p384::ecdsa::VerifyingKey::from_encoded_point(&pt)
                        .map(Key::P384)
                        .map_err(|_| wrong("the point is not on the P-384 curve"))
                }
                (Alg::ES256, Some("P-256")) if x.len() == 32 && y.len() == 32 => {
                    let pt = p256::EncodedPoint::from_affine_coordinates(
                        x.as_slice().into(),
                        y.as_slice().into(),
                        false,
                    );
                    p256::ecdsa::VerifyingKey::from_encoded_point(&pt)
                        .map(Key::P256)
                        .map_err(|_| wrong("the point is not on the P-256 curve"))
                }
                _ => Err(wrong(
                    "the curve does not fit the algorithm (ES384: P-384, ES256: P-256)",
                )),
            }
        }
        Alg::RS256 | Alg::RS384 => {
            if k.kty != "RSA" {
                return Err(wrong("an RS algorithm needs an RSA key"));
            }
            let n = b64_field(&k.n, "n")?;
            let e = b64_field(&k.e, "e")?;
            if n.len() < 256 {
                return Err(wrong("RSA keys must have at least 2048 bits"));
            }
            rsa_key(n, e).ok_or_else(|| wrong("not a valid RSA public key"))
        }
    }
}

/// An RSA public key as ring verifies with it: a modulus of 2048 to 8192 bits with no
/// leading zero byte, and an odd public exponent from 3 to 2^33 − 1 (minimal encoding).
fn rsa_key(n: Vec<u8>, e: Vec<u8>) -> Option<Key> {
    let minimal = |b: &[u8]| b.first().is_some_and(|&x| x != 0);
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(8, |x| x.leading_zeros() as usize));
    let e_value = e.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(256).map(|a| a | u64::from(b))
    });
    let ok = minimal(&n)
        && (2048..=8192).contains(&bits)
        && n.last().is_some_and(|&x| x & 1 == 1)
        && minimal(&e)
        && e_value.is_some_and(|v| (3..1 << 33).contains(&v) && v & 1 == 1);
    ok.then_some(Key::Rsa { n, e })
}

fn verify_signature(key: &Key, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    use p384::ecdsa::signature::Verifier;
    match (key, alg) {
        (Key::P384(k), Alg::ES384) => p384::ecdsa::Signature::from_slice(sig)
            .map(|s| k.verify(msg, &s).is_ok())
            .unwrap_or(false),
        (Key::P256(k), Alg::ES256) => p256::ecdsa::Signature::from_slice(sig)
            .map(|s| k.verify(msg, &s).is_ok())
            .unwrap_or(false),
        (Key::Rsa { n, e }, Alg::RS384) => ring::signature::RsaPublicKeyComponents { n, e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA384, msg, sig)
            .is_ok(),
        (Key::Rsa { n, e }, Alg::RS256) => ring::signature::RsaPublicKeyComponents { n, e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
            .is_ok(),
        _ => false,
    }
}

/// Where a client's keys come from, as registered.
#[derive(Debug, Clone, Copy)]
pub enum KeySource<'a> {
    /// A key set registered as a file: a `jku` in the header is never followed.
    Static(&'a Jwks),
    /// Keys read from the registered `jku` URL: a header `jku` must be exactly that URL.
    Jku { url: &'a str, keys: &'a Jwks },
}

/// What a verification checks the claims against.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The exact URL of the service being called (public base URL + path).
    pub audience: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
    pub leeway_secs: i64,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub iss: String,
    pub jti: String,
    pub kid: String,
    pub alg: Alg,
    /// Expiry in seconds since the epoch: the `jti` must be remembered until then.
    pub exp: i64,
    pub sub: Option<String>,
    pub tenant: Option<String>,
}

/// Checks the signature and the claims of a decoded token from the client whose keys are
/// `keys`.
pub fn verify(
    u: &Unverified,
    keys: KeySource<'_>,
    expect: Expect<'_>,
) -> Result<Verified, AuthError> {
    let alg = Alg::parse(&u.header.alg)?;
    let set = match keys {
        KeySource::Static(set) => set,
        KeySource::Jku { url, keys } => {
            if let Some(j) = &u.header.jku
                && j != url
            {
                return Err(AuthError::new(
                    "jku_not_registered",
                    "the token's jku is not the key set URL registered for its issuer",
                ));
            }
            keys
        }
    };
    let kid = u
        .header
        .kid
        .as_deref()
        .ok_or_else(|| AuthError::new("kid_missing", "the token header has no kid"))?;
    let jwk = set
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .ok_or_else(|| {
            AuthError::new(
                "kid_unknown",
                "no key with the token's kid is registered for its issuer",
            )
        })?;
    if let Some(a) = &jwk.alg
        && a != alg.as_str()
    {
        return Err(AuthError::new(
            "alg_mismatch",
            format!("the key is for {a}, the token says {}", alg.as_str()),
        ));
    }
    let key = check_key(jwk, alg).map_err(|e| AuthError::new("alg_mismatch", e.message))?;
    if !verify_signature(&key, alg, u.signing_input.as_bytes(), &u.signature) {
        return Err(AuthError::new(
            "bad_signature",
            "the signature does not verify with the registered key",
        ));
    }
    let c = &u.claims;
    let iss = c
        .iss
        .clone()
        .ok_or_else(|| AuthError::new("claim_missing", "the token has no iss"))?;
    match &c.aud {
        None => return Err(AuthError::new("claim_missing", "the token has no aud")),
        Some(a) if !a.contains(expect.audience) => {
            return Err(AuthError::new(
                "wrong_aud",
                format!("the token's aud is not {}", expect.audience),
            ));
        }
        Some(_) => {}
    }
    let exp =
        c.exp
            .filter(|x| x.is_finite())
            .ok_or_else(|| AuthError::new("claim_missing", "the token has no exp"))? as i64;
    if exp + expect.leeway_secs <= expect.now {
        return Err(AuthError::new("expired", "the token has expired"));
    }
    if exp > expect.now + MAX_LIFETIME_SECS + expect.leeway_secs {
        return Err(AuthError::new(
            "exp_too_far",
            "the token's exp is more than 5 minutes away",
        ));
    }
    let iat =
        c.iat
            .filter(|x| x.is_finite())
            .ok_or_else(|| AuthError::new("claim_missing", "the token has no iat"))? as i64;
    if iat > expect.now + expect.leeway_secs {
        return Err(AuthError::new(
            "iat_in_future",
            "the token was issued in the future",
        ));
    }
    let jti = c
        .jti
        .clone()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| AuthError::new("claim_missing", "the token has no usable jti"))?;
    Ok(Verified {
        iss,
        jti,
        kid: kid.to_string(),
        alg,
        exp,
        sub: c.sub.clone(),
        tenant: c.tenant.clone(),
    })
}

/// Base64url without padding, as JOSE writes it.
pub fn b64url(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// An ES384 signing key made from 48 secret bytes (a P-384 scalar).
pub struct Es384Signer {
    key: p384::ecdsa::SigningKey,
    kid: String,
}

impl std::fmt::Debug for Es384Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es384Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Es384Signer {
    /// `secret` must be a valid scalar (nonzero, below the curve order).
    pub fn from_secret(secret: &[u8], kid: impl Into<String>) -> Result<Es384Signer, AuthError> {
        let key = p384::ecdsa::SigningKey::from_slice(secret)
            .map_err(|_| AuthError::new("key_invalid", "not a P-384 secret scalar"))?;
        Ok(Es384Signer {
            key,
            kid: kid.into(),
        })
    }

    /// A private JWK (with `d`), as the specification prints one.
    pub fn from_private_jwk(jwk: &Jwk) -> Result<Es384Signer, AuthError> {
        let d = b64_field(&jwk.d, "d")?;
        Es384Signer::from_secret(&d, jwk.kid.clone().unwrap_or_default())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> Jwk {
        let pt = self.key.verifying_key().to_encoded_point(false);
        Jwk {
            kty: "EC".into(),
            kid: Some(self.kid.clone()),
            alg: Some("ES384".into()),
            use_: Some("sig".into()),
            crv: Some("P-384".into()),
            x: pt.x().map(|x| b64url(x)),
            y: pt.y().map(|y| b64url(y)),
            n: None,
            e: None,
            d: None,
        }
    }

    /// Signs `claims` (a JSON object) into a compact token with this key's `kid`, and `jku`
    /// if given.
    pub fn sign(&self, claims: &serde_json::Value, jku: Option<&str>) -> String {
        let mut header = serde_json::json!({"alg": "ES384", "typ": "JWT", "kid": self.kid});
        if let Some(j) = jku {
            header["jku"] = serde_json::Value::String(j.to_string());
        }
        sign_with(&header, claims, |msg| {
            use p384::ecdsa::signature::Signer;
            let s: p384::ecdsa::Signature = self.key.sign(msg);
            s.to_bytes().to_vec()
        })
    }
}

/// Builds a compact token from a header, claims and a signing function (also used by tests
/// to forge tokens with other algorithms).
pub fn sign_with(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    sign: impl FnOnce(&[u8]) -> Vec<u8>,
) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64url(&sig))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn data(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/cds-hooks")
            .join(name);
        std::fs::read_to_string(p).unwrap()
    }

    const AUD: &str = "https://cds.example.org/cds-services/some-service";

    fn spec_keys() -> Jwks {
        Jwks::parse(&data("v3ballot__30_json-web-key-set-public-key.json")).unwrap()
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            audience: AUD,
            now,
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    #[test]
    fn the_specification_token_verifies_before_its_expiry_and_not_after() {
        let token = data("v1__jwt_example_token.txt");
        let u = decode(&token).unwrap();
        assert_eq!(u.issuer(), Some("https://fhir-ehr.example.com/"));
        let keys = spec_keys();
        let v = verify(&u, KeySource::Static(&keys), expect(1_422_568_800)).unwrap();
        assert_eq!(v.alg, Alg::ES384);
        assert_eq!(v.jti, "ee22b021-e1b7-4611-ba5b-8eec6a33ac1e");
        assert_eq!(v.exp, 1_422_568_860);
        let now = 1_800_000_000;
        let e = verify(&u, KeySource::Static(&keys), expect(now)).unwrap_err();
        assert_eq!(e.code, "expired");
        let e = verify(
            &u,
            KeySource::Static(&keys),
            Expect {
                audience: "https://cds.example.org/cds-services/other",
                ..expect(1_422_568_800)
            },
        )
        .unwrap_err();
        assert_eq!(e.code, "wrong_aud");
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = data("v1__jwt_example_token.txt");
        let parts: Vec<&str> = token.trim().split('.').collect();
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        let mut c = claims.clone();
        c["tenant"] = "other".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64url(c.to_string().as_bytes()),
            parts[2]
        );
        let e = verify(
            &decode(&forged).unwrap(),
            KeySource::Static(&spec_keys()),
            expect(1_422_568_800),
        )
        .unwrap_err();
        assert_eq!(e.code, "bad_signature");
    }

    #[test]
    fn the_private_key_of_the_specification_signs_tokens_that_verify() {
        let jwk: Jwk =
            serde_json::from_str(&data("v3ballot__31_json-web-key-private-key.json")).unwrap();
        let signer = Es384Signer::from_private_jwk(&jwk).unwrap();
        assert_eq!(
            Jwks {
                keys: vec![signer.public_jwk()]
            }
            .keys[0]
                .x,
            spec_keys().keys[0].x
        );
        let now = 1_700_000_000;
        let claims = serde_json::json!({"iss": "https://fhir-ehr.example.com/", "aud": AUD,
            "exp": now + 60, "iat": now, "jti": "a"});
        let t = signer.sign(&claims, None);
        verify(
            &decode(&t).unwrap(),
            KeySource::Static(&spec_keys()),
            expect(now),
        )
        .unwrap();
        // A jku that is not the registered one is refused for a jku client…
        let t = signer.sign(&claims, Some("https://evil.example/jwks"));
        let keys = spec_keys();
        let e = verify(
            &decode(&t).unwrap(),
            KeySource::Jku {
                url: "https://fhir-ehr.example.com/jwk_uri",
                keys: &keys,
            },
            expect(now),
        )
        .unwrap_err();
        assert_eq!(e.code, "jku_not_registered");
        // …and the registered one is accepted.
        let t = signer.sign(&claims, Some("https://fhir-ehr.example.com/jwk_uri"));
        verify(
            &decode(&t).unwrap(),
            KeySource::Jku {
                url: "https://fhir-ehr.example.com/jwk_uri",
                keys: &keys,
            },
            expect(now),
        )
        .unwrap();
        // Too long a life, an iat in the future, no jti.
        for (c, code) in [
            (
                serde_json::json!({"iss": "i", "aud": AUD, "exp": now + 3600, "iat": now, "jti": "a"}),
                "exp_too_far",
            ),
            (
                serde_json::json!({"iss": "i", "aud": AUD, "exp": now + 60, "iat": now + 120, "jti": "a"}),
                "iat_in_future",
            ),
            (
                serde_json::json!({"iss": "i", "aud": AUD, "exp": now + 60, "iat": now}),
                "claim_missing",
            ),
            (
                serde_json::json!({"iss": "i", "aud": [AUD, "x"], "exp": now + 60, "iat": now, "jti": "b"}),
                "",
            ),
        ] {
            let r = verify(
                &decode(&signer.sign(&c, None)).unwrap(),
                KeySource::Static(&keys),
                expect(now),
            );
            match r {
                Ok(_) => assert_eq!(code, ""),
                Err(e) => assert_eq!(e.code, code),
            }
        }
    }

    /// RSA keys and tokens made by OpenSSL (`testdata/generate_rsa.py`).
    fn rsa_fixture() -> (Jwks, serde_json::Value) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        (
            Jwks::parse(&read("rsa-jwks.json")).unwrap(),
            serde_json::from_str(&read("rsa-tokens.json")).unwrap(),
        )
    }

    #[test]
    fn rsa_tokens_signed_by_openssl_verify_and_forgeries_do_not() {
        let (keys, t) = rsa_fixture();
        let at = Expect {
            audience: t["aud"].as_str().unwrap(),
            now: t["now"].as_i64().unwrap(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        };
        let check = |name: &str| {
            let u = decode(t[name].as_str().unwrap()).unwrap();
            verify(&u, KeySource::Static(&keys), at)
        };
        let v = check("rs384").unwrap();
        assert_eq!(
            (v.alg, v.jti.as_str(), v.kid.as_str()),
            (Alg::RS384, "t-rs384", "rsa-2048")
        );
        assert_eq!(check("rs256").unwrap().alg, Alg::RS256);
        for forged in ["rs384_tampered", "rs384_other_key", "rs384_as_rs256"] {
            assert_eq!(check(forged).unwrap_err().code, "bad_signature", "{forged}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let short = std::fs::read_to_string(dir.join("rsa-1024-jwks.json")).unwrap();
        let e = Jwks::parse(&short).unwrap_err();
        assert!(e.message.contains("2048 bits"), "{}", e.message);
        // A valid token past its expiry is still refused.
        let u = decode(t["rs384"].as_str().unwrap()).unwrap();
        let late = Expect {
            now: at.now + 3600,
            ..at
        };
        assert_eq!(
            verify(&u, KeySource::Static(&keys), late).unwrap_err().code,
            "expired"
        );
    }

    #[test]
    fn rsa_keys_must_be_what_a_verifier_accepts() {
        let n = |bytes: usize, last: u8| {
            let mut v = vec![0xc5; bytes];
            *v.last_mut().unwrap() = last;
            v
        };
        let e = |v: u64| {
            v.to_be_bytes()
                .iter()
                .copied()
                .skip_while(|&b| b == 0)
                .collect()
        };
        assert!(rsa_key(n(256, 0x01), e(65537)).is_some());
        assert!(rsa_key(n(1024, 0x01), e(3)).is_some());
        assert!(rsa_key(n(255, 0x01), e(65537)).is_none(), "2040 bits");
        assert!(rsa_key(n(1025, 0x01), e(65537)).is_none(), "8200 bits");
        assert!(rsa_key(n(256, 0x02), e(65537)).is_none(), "even modulus");
        let mut leading_zero = n(257, 0x01);
        leading_zero[0] = 0;
        assert!(rsa_key(leading_zero, e(65537)).is_none(), "not minimal");
        assert!(rsa_key(n(256, 0x01), e(65536)).is_none(), "even exponent");
        assert!(rsa_key(n(256, 0x01), e(1)).is_none(), "exponent 1");
        assert!(
            rsa_key(n(256, 0x01), e(1 << 33 | 1)).is_none(),
            "exponent too large"
        );
        assert!(rsa_key(n(256, 0x01), vec![]).is_none(), "no exponent");
        assert!(rsa_key(vec![], e(65537)).is_none(), "no modulus");
    }

    #[test]
    fn none_and_hmac_are_refused_and_unknown_keys_are_not_found() {
        let now = 1_700_000_000;
        let claims =
            serde_json::json!({"iss": "i", "aud": AUD, "exp": now + 60, "iat": now, "jti": "a"});
        let keys = spec_keys();
        for alg in ["none", "HS256", "HS384", "PS256"] {
            let t = sign_with(
                &serde_json::json!({"alg": alg, "kid": "example-kid"}),
                &claims,
                |_| vec![],
            );
            let e =
                verify(&decode(&t).unwrap(), KeySource::Static(&keys), expect(now)).unwrap_err();
            assert_eq!(e.code, "alg_not_allowed", "{alg}");
        }
        let other = Es384Signer::from_secret(&[7u8; 48], "other-kid").unwrap();
        let e = verify(
            &decode(&other.sign(&claims, None)).unwrap(),
            KeySource::Static(&keys),
            expect(now),
        )
        .unwrap_err();
        assert_eq!(e.code, "kid_unknown");
        // The same kid with another key: the signature fails.
        let imposter = Es384Signer::from_secret(&[7u8; 48], "example-kid").unwrap();
        let e = verify(
            &decode(&imposter.sign(&claims, None)).unwrap(),
            KeySource::Static(&keys),
            expect(now),
        )
        .unwrap_err();
        assert_eq!(e.code, "bad_signature");
        assert_eq!(decode("a.b").unwrap_err().code, "token_malformed");
        assert_eq!(decode("!!.!!.!!").unwrap_err().code, "token_malformed");
    }

    #[test]
    fn key_sets_are_checked() {
        assert!(Jwks::parse(&data("v3ballot__30_json-web-key-set-public-key.json")).is_ok());
        let private = format!(
            "{{\"keys\": [{}]}}",
            data("v3ballot__31_json-web-key-private-key.json")
        );
        assert!(
            Jwks::parse(&private)
                .unwrap_err()
                .message
                .contains("private")
        );
        assert!(Jwks::parse("{\"keys\": []}").is_err());
        assert!(
            Jwks::parse("{\"keys\": [{\"kty\": \"oct\", \"kid\": \"k\", \"k\": \"AAAA\"}]}")
                .is_err()
        );
    }
}
