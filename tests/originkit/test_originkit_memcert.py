"""Client keys are loaded from an anonymous memory file, never from disk, and errors never echo them."""

from __future__ import annotations

import os
import ssl

import pytest
from okhelpers import Pki

from originlock.originkit.memcert import KeyMaterialError, load_cert_chain_from_memory, memfd_supported

pytestmark = pytest.mark.skipif(not memfd_supported(), reason="memfd_create is Linux-only")


def test_loads_and_closes_descriptor(pki: Pki) -> None:
    before = set(os.listdir("/proc/self/fd"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    load_cert_chain_from_memory(ctx, pki.global_edge.cert_pem, pki.global_edge.key_pem)
    # The memfd is closed again: no descriptor is left behind holding the key.
    assert set(os.listdir("/proc/self/fd")) == before


def test_mismatch_is_refused_without_key_in_message(pki: Pki) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    key = pki.zone_edge.key_pem
    with pytest.raises(KeyMaterialError) as info:
        load_cert_chain_from_memory(ctx, pki.global_edge.cert_pem, key)
    assert key.decode().splitlines()[1] not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
