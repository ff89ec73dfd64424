"""Signatures anyone can check: W3C Data Integrity proofs, cryptosuite ``eddsa-jcs-2022``.

The issuer is an Ed25519 key named by a ``did:key`` identifier, which carries the
public key itself: a verifier needs no network access and no account here, only
the credential. How a proof is made (VC Data Integrity EdDSA Cryptosuites v1.0):

1. the document without ``proof`` and the proof options without ``proofValue``
   are each canonicalised with JCS (RFC 8785) and hashed with SHA-256;
2. the signature is Ed25519 over ``hash(options) + hash(document)``;
3. ``proofValue`` is the signature in multibase base58btc (``z...``).

Signed documents hold no floating-point numbers, so JCS is exactly
``json.dumps`` with sorted keys and no spaces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CRYPTOSUITE = "eddsa-jcs-2022"
ED25519_MULTICODEC = b"\xed\x01"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class SignatureError(ValueError):
    pass


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in B58:
            raise SignatureError(f"{char!r} is not base58")
        number = number * 58 + B58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def jcs(document) -> bytes:
    def check(value):
        if isinstance(value, float):
            raise SignatureError("signed documents hold no floating-point numbers")
        if isinstance(value, dict):
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)

    check(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def did_key(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "did:key:z" + b58encode(ED25519_MULTICODEC + raw)


def public_key_of(did: str) -> Ed25519PublicKey:
    """The Ed25519 key a ``did:key`` (or one of its verification methods) names."""
    did = did.split("#", 1)[0]
    if not did.startswith("did:key:z"):
        raise SignatureError(f"{did[:40]!r} is not an Ed25519 did:key")
    raw = b58decode(did[len("did:key:z"):])
    if not raw.startswith(ED25519_MULTICODEC) or len(raw) != 34:
        raise SignatureError("the did:key does not hold an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


def _hash_data(document: dict, options: dict) -> bytes:
    return hashlib.sha256(jcs(options)).digest() + hashlib.sha256(jcs(document)).digest()


class Signer:
    """The issuer's key, kept in a file readable only by the service."""

    def __init__(self, key: Ed25519PrivateKey):
        self.key = key
        self.did = did_key(key.public_key())
        self.verification_method = f"{self.did}#{self.did[len('did:key:'):]}"

    @classmethod
    def from_file(cls, path: Path) -> "Signer":
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"{path} does not hold an Ed25519 key")
        return cls(key)

    def public_key_multibase(self) -> str:
        return self.did[len("did:key:"):]

    def sign(self, document: dict, created: dt.datetime) -> dict:
        """``document`` with a Data Integrity proof added."""
        unsigned = {k: v for k, v in document.items() if k != "proof"}
        options = {
            "type": "DataIntegrityProof",
            "cryptosuite": CRYPTOSUITE,
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verificationMethod": self.verification_method,
            "proofPurpose": "assertionMethod",
        }
        if "@context" in unsigned:
            options["@context"] = unsigned["@context"]
        signature = self.key.sign(_hash_data(unsigned, options))
        proof = {k: v for k, v in options.items() if k != "@context"}
        proof["proofValue"] = "z" + b58encode(signature)
        return {**unsigned, "proof": proof}


def verify(document: dict) -> str:
    """Check a document's ``eddsa-jcs-2022`` proof; return the verification method that signed it."""
    if not isinstance(document, dict) or not isinstance(document.get("proof"), dict):
        raise SignatureError("no proof")
    proof = document["proof"]
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise SignatureError(f"not a {CRYPTOSUITE} Data Integrity proof")
    if proof.get("proofPurpose") != "assertionMethod":
        raise SignatureError("the proof is not for an assertion")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise SignatureError("proofValue is not multibase base58btc")
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in unsigned:
        options["@context"] = unsigned["@context"]
    method = str(proof.get("verificationMethod", ""))
    try:
        public_key_of(method).verify(b58decode(value[1:]), _hash_data(unsigned, options))
    except InvalidSignature:
        raise SignatureError("the signature does not match the document: it was changed after signing") from None
    return method
