"""The official `cloudflare` SDK (5.x) drives spec §9's AOP workflow against `originlock serve`, on both stores."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import cloudflare
import pytest
from cloudflare import Cloudflare

from originlock.testing.serve import ServeProcess, start_serve
from originlock.testing.upload_pki import UploadPki, leaf_pems

CERT_FIELDS = ("id", "certificate", "expires_on", "issuer", "signature", "serial_number", "status", "uploaded_on")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data_dir = tmp_path_factory.mktemp("sdk") / "data"
    store = request.getfixturevalue("pg_schema_factory")("ol_sdk") if request.param == "postgres" else None
    proc = start_serve(data_dir, store)
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture
def cf(served: ServeProcess) -> Cloudflare:
    return Cloudflare(api_token=served.token, base_url=f"{served.api_url}/client/v4", max_retries=0)


def _check_cert(obj: object, leaf_pem: str, serial: int) -> None:
    for field in CERT_FIELDS:
        assert getattr(obj, field) is not None, field
    assert obj.certificate.strip() == leaf_pem.strip()  # type: ignore[attr-defined]
    assert obj.serial_number == str(serial)  # type: ignore[attr-defined]
    assert obj.status == "active"  # type: ignore[attr-defined]
    assert getattr(obj, "private_key", None) is None


def test_full_aop_workflow(cf: Cloudflare, pki: UploadPki) -> None:
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name=f"sdk-{secrets.token_hex(3)}.test", type="full")
    assert zone is not None and len(zone.id) == 32
    assert cf.zones.get(zone_id=zone.id).name == zone.name  # type: ignore[union-attr]
    assert zone.id in [z.id for z in cf.zones.list()]

    record = cf.dns.records.create(
        zone_id=zone.id, name=f"app.{zone.name}", type="A", content="127.0.0.1", ttl=1, proxied=True
    )
    assert record is not None and record.proxied is True and record.content == "127.0.0.1"
    assert [r.id for r in cf.dns.records.list(zone_id=zone.id)] == [record.id]

    ssl = cf.zones.settings.edit("ssl", zone_id=zone.id, value="strict")
    assert ssl is not None and ssl.id == "ssl" and ssl.value == "strict"  # type: ignore[union-attr]
    tca = cf.zones.settings.edit("tls_client_auth", zone_id=zone.id, value="on")
    assert tca.value == "on"  # type: ignore[union-attr]
    assert cf.zones.settings.get("tls_client_auth", zone_id=zone.id).value == "on"  # type: ignore[union-attr]

    # Zone-level certificate.
    zleaf = pki.client(zone.name)
    zcert, zkey = leaf_pems(zleaf)
    created = cf.origin_tls_client_auth.zone_certificates.create(zone_id=zone.id, certificate=zcert, private_key=zkey)
    assert created is not None
    _check_cert(created, zcert, zleaf.cert.serial_number)
    listed = list(cf.origin_tls_client_auth.zone_certificates.list(zone_id=zone.id))
    assert [c.id for c in listed] == [created.id]
    got = cf.origin_tls_client_auth.zone_certificates.get(created.id, zone_id=zone.id)
    _check_cert(got, zcert, zleaf.cert.serial_number)
    assert cf.origin_tls_client_auth.settings.get(zone_id=zone.id).enabled is False  # type: ignore[union-attr]
    assert cf.origin_tls_client_auth.settings.update(zone_id=zone.id, enabled=True).enabled is True  # type: ignore[union-attr]
    assert cf.origin_tls_client_auth.settings.get(zone_id=zone.id).enabled is True  # type: ignore[union-attr]

    # Per-hostname certificate and associations: true, false and None stay distinct.
    hleaf = pki.client(f"app.{zone.name}")
    hcert, hkey = leaf_pems(hleaf)
    hc = cf.origin_tls_client_auth.hostname_certificates.create(zone_id=zone.id, certificate=hcert, private_key=hkey)
    assert hc is not None
    _check_cert(hc, hcert, hleaf.cert.serial_number)
    assert [c.id for c in cf.origin_tls_client_auth.hostname_certificates.list(zone_id=zone.id)] == [hc.id]
    _check_cert(
        cf.origin_tls_client_auth.hostname_certificates.get(hc.id, zone_id=zone.id), hcert, hleaf.cert.serial_number
    )

    host = f"app.{zone.name}"
    for enabled in (True, False, None):
        page = cf.origin_tls_client_auth.hostnames.update(
            zone_id=zone.id, config=[{"hostname": host, "cert_id": hc.id, "enabled": enabled}]
        )
        items = list(page)
        assert len(items) == 1
        assert items[0].hostname == host and items[0].cert_id == hc.id and items[0].enabled is enabled
        got_assoc = cf.origin_tls_client_auth.hostnames.get(host, zone_id=zone.id)
        assert got_assoc is not None and got_assoc.enabled is enabled
        assert got_assoc.cert_status == "active" and got_assoc.serial_number == str(hleaf.cert.serial_number)
        assert got_assoc.expires_on is not None and got_assoc.created_at is not None

    deleted = cf.origin_tls_client_auth.hostname_certificates.delete(hc.id, zone_id=zone.id)
    assert deleted is not None and deleted.id == hc.id
    with pytest.raises(cloudflare.NotFoundError):
        cf.origin_tls_client_auth.hostname_certificates.get(hc.id, zone_id=zone.id)
    zdel = cf.origin_tls_client_auth.zone_certificates.delete(created.id, zone_id=zone.id)
    assert zdel is not None and zdel.id == created.id
    assert list(cf.origin_tls_client_auth.zone_certificates.list(zone_id=zone.id)) == []


def test_sdk_sees_errors_as_exceptions(cf: Cloudflare, pki: UploadPki) -> None:
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name=f"err-{secrets.token_hex(3)}.test")
    assert zone is not None
    with pytest.raises(cloudflare.BadRequestError) as info:
        cf.origin_tls_client_auth.hostname_certificates.create(
            zone_id=zone.id, certificate=pki.ca.cert_pem, private_key=pki.ca.key_pem.decode()
        )
    assert "missing leaf certificate" in str(info.value)
    with pytest.raises(cloudflare.BadRequestError):
        cf.zones.settings.edit("ssl", zone_id=zone.id, value="bogus")  # type: ignore[arg-type]
    with pytest.raises(cloudflare.NotFoundError):
        cf.zones.get(zone_id="0" * 32)
    bad = Cloudflare(api_token="wrong-token", base_url=str(cf.base_url), max_retries=0)
    with pytest.raises(cloudflare.AuthenticationError):
        list(bad.zones.list())


def test_sdk_pages_through_zones(cf: Cloudflare) -> None:
    account = next(iter(cf.accounts.list()))
    prefix = secrets.token_hex(3)
    names = {f"p{i}-{prefix}.test" for i in range(12)}
    for name in names:
        cf.zones.create(account={"id": account.id}, name=name)
    seen = {z.name for z in cf.zones.list(per_page=5)}
    assert names <= seen


def test_ca_pems_served_without_auth(served: ServeProcess) -> None:
    import httpx
    from cryptography import x509

    for name in ("origin-pull", "edge", "origin"):
        r = httpx.get(f"{served.api_url}/ca/{name}.pem")
        assert r.status_code == 200
        cert = x509.load_pem_x509_certificate(r.content)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_data_dir_modes(served: ServeProcess) -> None:
    d: Path = served.data_dir
    assert d.stat().st_mode & 0o777 == 0o700
    assert (d / "master.key").stat().st_mode & 0o777 == 0o600
    assert (d / "admin-token").stat().st_mode & 0o777 == 0o600
