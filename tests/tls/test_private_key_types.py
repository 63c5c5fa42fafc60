"""Which private keys ``load_private_key`` takes: RSA, ECDSA and Ed25519; every other type is a clear 4xx-worthy
error that never echoes the key. Loading a supported key warns about nothing (``originlock serve`` loads keys
at every start, and a deprecation warning there reached the operator's terminal)."""

from __future__ import annotations

import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from originlock.tls.certs import CertificateError, load_private_key


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _dsa_pem() -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DSA is deprecated in recent cryptography releases: the test still needs one
        from cryptography.hazmat.primitives.asymmetric import dsa

        return _pem(dsa.generate_private_key(key_size=2048))


@pytest.mark.parametrize(
    "make",
    [
        lambda: _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        lambda: _pem(ec.generate_private_key(ec.SECP256R1())),
        lambda: _pem(ed25519.Ed25519PrivateKey.generate()),
    ],
    ids=["rsa", "ecdsa", "ed25519"],
)
def test_supported_keys_load_without_a_warning(make: object) -> None:
    pem = make()  # type: ignore[operator]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_private_key(pem)


@pytest.mark.parametrize(
    "make",
    [_dsa_pem, lambda: _pem(ed448.Ed448PrivateKey.generate()), lambda: _pem(x25519.X25519PrivateKey.generate())],
    ids=["dsa", "ed448", "x25519"],
)
def test_other_key_types_are_refused_without_echoing_the_key(make: object) -> None:
    pem = make()  # type: ignore[operator]
    with pytest.raises(CertificateError) as refused:
        load_private_key(pem)
    assert "not supported" in str(refused.value)
    assert pem.decode()[40:80] not in str(refused.value)
