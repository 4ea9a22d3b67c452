"""RSA signing keys for the emulated Entra ID tokens: key pairs made by the openssl command line,
RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 §8.2) computed with Python integers, and the
public halves published as a JSON Web Key Set (RFC 7517). Python 3 standard library only."""

import base64
import hashlib
import hmac
import json
import re
import subprocess

# DER prefix of DigestInfo for SHA-256 (RFC 8017 §9.2, note 1)
SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class RsaKey:
    """One key pair. kid names it in token headers and in the key set."""

    def __init__(self, kid, n, e, d, p, q, dp, dq, qinv, pem):
        self.kid, self.n, self.e, self.d = kid, n, e, d
        self.p, self.q, self.dp, self.dq, self.qinv = p, q, dp, dq, qinv
        self.public_pem = pem
        self.size = (n.bit_length() + 7) // 8

    @classmethod
    def generate(cls, bits=2048):
        """A fresh key pair from `openssl genpkey`; its numbers read back from `openssl pkey -text`."""
        pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits],
                             check=True, capture_output=True).stdout
        text = subprocess.run(["openssl", "pkey", "-text", "-noout"], input=pem, check=True,
                              capture_output=True).stdout.decode()
        pub = subprocess.run(["openssl", "pkey", "-pubout"], input=pem, check=True, capture_output=True).stdout
        fields = {}
        for name in ("modulus", "privateExponent", "prime1", "prime2", "exponent1", "exponent2", "coefficient"):
            m = re.search(r"^%s:\s*\n((?:\s+[0-9a-f:]+\n)+)" % name, text, re.M)
            if not m:
                raise RuntimeError("openssl pkey -text: no %s" % name)
            fields[name] = int(re.sub(r"[\s:]", "", m.group(1)), 16)
        e = int(re.search(r"^publicExponent:\s*(\d+)", text, re.M).group(1))
        n = fields["modulus"]
        kid = b64url(hashlib.sha256(_int_bytes(n)).digest()[:15])
        return cls(kid, n, e, fields["privateExponent"], fields["prime1"], fields["prime2"], fields["exponent1"],
                   fields["exponent2"], fields["coefficient"], pub.decode())

    def jwk(self):
        """The public key as Entra publishes it (x5c left out: nothing here issues certificates)."""
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": b64url(_int_bytes(self.n)),
                "e": b64url(_int_bytes(self.e))}

    def sign(self, message):
        """RS256 signature of message (bytes): EMSA-PKCS1-v1_5 encoded, raised with the CRT."""
        t = SHA256_PREFIX + hashlib.sha256(message).digest()
        em = b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t
        m = int.from_bytes(em, "big")
        s1, s2 = pow(m, self.dp, self.p), pow(m, self.dq, self.q)
        s = s2 + (self.qinv * (s1 - s2) % self.p) * self.q
        return s.to_bytes(self.size, "big")


def encode_jwt(header, claims, key=None, hs256_secret=None):
    """A compact JWS: RS256 with key, HS256 with hs256_secret (an attack the client must refuse), or
    unsigned when both are None (alg "none")."""
    signing_input = "%s.%s" % (b64url(json.dumps(header, separators=(",", ":")).encode()),
                               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    if key is not None:
        sig = key.sign(signing_input.encode())
    elif hs256_secret is not None:
        sig = hmac.new(hs256_secret, signing_input.encode(), hashlib.sha256).digest()
    else:
        sig = b""
    return signing_input + "." + b64url(sig)
