"""DICOM over TLS: certificates made here (a CA, the SCP's, a modality's, a stranger's); a
pynetdicom SCU and dcmtk's storescu store over TLS with a client certificate; no client
certificate, one from another CA, or plain TCP to the TLS port get no association."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import ipaddress
import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pynetdicom import AE

from tests.conftest import Api, with_settings
from tests.dicom.conftest import dget
from tests.dicom.test_scp import _run
from yilian.dicom import keys as dicom_keys
from yilian.dicom.synth import ct_series
from yilian.server.app import create_app
from yilian.server.core.settings import Settings

Key = ec.EllipticCurvePrivateKey


def _cert(subject: str, key: Key, issuer: tuple[str, Key] | None = None, *,
          ca: bool = False, ip: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Key | None = None) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem; scp.pem/.key (IP 127.0.0.1); modality.pem/.key (signed by the CA);
    stranger.pem/.key (signed by a CA of its own)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    _write(d / "ca", _cert("Yilian test CA", ca_key, ca=True))
    for name, issuer in (("scp", ("Yilian test CA", ca_key)),
                         ("modality", ("Yilian test CA", ca_key)),
                         ("stranger", ("Someone else's CA", other_key))):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(d / name, _cert(name, key, issuer, ip="127.0.0.1" if name == "scp" else None),
               key)
    return d


@pytest.fixture
async def tls_server(settings: Settings, pki: Path) -> AsyncIterator[TestServer]:
    srv = TestServer(create_app(with_settings(
        settings, dicom_port=0, dicom_tls_cert=str(pki / "scp.pem"),
        dicom_tls_key=str(pki / "scp.key"), dicom_tls_ca=str(pki / "ca.pem"))),
        host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv
    await srv.close()


def _client_context(pki: Path, who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if who is not None:
        ctx.load_cert_chain(pki / f"{who}.pem", pki / f"{who}.key")
    return ctx


def _store(port: int, data: bytes, tls: ssl.SSLContext | None) -> int | None:
    """C-STORE one file as SHALANG_DR; the status, or None without an association."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ae = AE(ae_title="SHALANG_DR")
    ae.acse_timeout = ae.network_timeout = 10
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN",
                         tls_args=(tls, "127.0.0.1") if tls is not None else None)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


async def test_dimse_over_tls(tls_server: TestServer, pki: Path, tmp_path: Path) -> None:
    port = tls_server.app[dicom_keys.DICOM_PORT]
    assert port
    files = ct_series(3, 32, patient={"name": "Tls^Sent", "id": "TLS-1"})
    modality = _client_context(pki, "modality")
    assert await asyncio.to_thread(_store, port, files[0], modality) == 0x0000
    # refused at the handshake: no client certificate, one from another CA; plain TCP
    assert await asyncio.to_thread(_store, port, files[1], _client_context(pki, None)) is None
    assert await asyncio.to_thread(_store, port, files[1],
                                   _client_context(pki, "stranger")) is None
    assert await asyncio.to_thread(_store, port, files[1], None) is None
    if shutil.which("storescu"):  # dcmtk, with its default BCP 195 TLS profile
        path = tmp_path / "1.dcm"
        path.write_bytes(files[1])
        code, out = await _run("storescu", "+tls", str(pki / "modality.key"),
                               str(pki / "modality.pem"), "+cf", str(pki / "ca.pem"),
                               "-aet", "SHALANG_DR", "-aec", "YILIAN", "127.0.0.1", str(port),
                               str(path))
        assert code == 0, out
        code, out = await _run("storescu", "-aet", "SHALANG_DR", "-aec", "YILIAN",
                               "127.0.0.1", str(port), str(path))
        assert code != 0, out
    else:
        assert await asyncio.to_thread(_store, port, files[1], modality) == 0x0000
    assert await asyncio.to_thread(_store, port, files[2], modality) == 0x0000
    async with ClientSession() as http:
        township = await Api(tls_server, http).login("township")
        status, found = await dget(township, "/dicomweb/instances",
                                   params={"PatientID": "TLS-1"})
    assert status == 200 and len(found) == 3
