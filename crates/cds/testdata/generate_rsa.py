"""RSA client keys and tokens for the JWT tests, signed by `cryptography` (OpenSSL).

Writes rsa-jwks.json (the client's public key set: an RSA-2048 key `rsa-2048`),
rsa-1024-jwks.json (a key set with an RSA-1024 key, which must be refused) and
rsa-tokens.json (compact tokens and the time they are checked at). Run: python generate_rsa.py (versions in requirements.txt). Each
run makes new keys; the tests only need the files to agree with each other.
"""
import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISS = "https://ehr.example.org"
AUD = "https://vigil.example.org/cds-services/deterioration-risk"
IAT = 1_790_000_000


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "n": uint(pub.n), "e": uint(pub.e)}


def token(key, kid, alg, jti, tamper=False):
    header = {"alg": alg, "typ": "JWT", "kid": kid}
    claims = {"iss": ISS, "sub": "client-1", "aud": AUD, "iat": IAT, "exp": IAT + 300, "jti": jti}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    h = hashes.SHA384() if alg == "RS384" else hashes.SHA256()
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), h)
    if tamper:
        claims["sub"] = "client-2"
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(sig)


k2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
k1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
with open("rsa-jwks.json", "w") as f:
    json.dump({"keys": [jwk(k2048, "rsa-2048")]}, f, indent=1)
    f.write("\n")
with open("rsa-1024-jwks.json", "w") as f:
    json.dump({"keys": [jwk(k1024, "rsa-1024")]}, f, indent=1)
    f.write("\n")
tokens = {
    "iss": ISS,
    "aud": AUD,
    "now": IAT + 10,
    "rs384": token(k2048, "rsa-2048", "RS384", "t-rs384"),
    "rs256": token(k2048, "rsa-2048", "RS256", "t-rs256"),
    "rs384_tampered": token(k2048, "rsa-2048", "RS384", "t-tampered", tamper=True),
    "rs384_other_key": token(other, "rsa-2048", "RS384", "t-other"),
    "rs384_as_rs256": token(k2048, "rsa-2048", "RS384", "t-swapped").replace(
        b64(json.dumps({"alg": "RS384", "typ": "JWT", "kid": "rsa-2048"}).encode()),
        b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "rsa-2048"}).encode()),
    ),
}
with open("rsa-tokens.json", "w") as f:
    json.dump(tokens, f, indent=1)
    f.write("\n")
