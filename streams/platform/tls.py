"""Local TLS material for the broker's authenticated listener: a CA and server certificates.

Generated on first use with ``cryptography`` and kept outside the repo (``<cache>/tls`` by default):
the CA (``ca.pem``, ``ca.key``) is made once and reused, so client configs handed to municipalities
stay valid across broker restarts; each broker instance gets its own server certificate signed by it
(``broker.pem``: PKCS#8 key + certificate chain, the PEM keystore format Kafka reads directly).
A hardened broker's nodes also present their certificate as clients to each other (mTLS on the
inter-broker and controller listeners), and admin commands connect with a client certificate
(``admin.pem``, CN=admin). Private keys are written 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from streams.platform.secret_files import check_private, write_secret

_CA_DAYS = 3650
_SERVER_DAYS = 825


@dataclass(frozen=True)
class CertificateAuthority:
    cert_file: Path
    key_file: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_ca(tls_dir: Path, common_name: str = "bosai hub local CA") -> CertificateAuthority:
    """The local CA in tls_dir, created on first call."""
    ca = CertificateAuthority(tls_dir / "ca.pem", tls_dir / "ca.key")
    if ca.cert_file.is_file() and ca.key_file.is_file():
        check_private(ca.key_file, "the CA's private key")
        return ca
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bosai hub"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_secret(ca.key_file, _pkcs8(key))
    ca.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca


def _issue(
    ca: CertificateAuthority,
    out_file: Path,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
    alt_names: list[x509.GeneralName],
) -> Path:
    """A key + certificate chain (PEM, 0600) signed by the CA."""
    check_private(ca.key_file, "the CA's private key")
    ca_key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):  # the CA this module makes has an RSA key
        raise ValueError(f"{ca.key_file}: a {type(ca_key).__name__}, not the CA's RSA private key")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    write_secret(out_file, _pkcs8(key) + chain)
    return out_file


def issue_server_certificate(
    ca: CertificateAuthority,
    out_file: Path,
    *,
    hostnames: tuple[str, ...],
    ips: tuple[str, ...],
    common_name: str | None = None,
    client_auth: bool = False,
) -> Path:
    """Write a server key + certificate chain (PEM) for the given names, signed by the CA.

    ``client_auth``: the nodes of a hardened cluster also present it to each other (mTLS), and the broker
    sees ``User:<common_name>``.
    """
    alt_names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
    name = common_name or (hostnames[0] if hostnames else ips[0])
    return _issue(ca, out_file, name, usages, alt_names)


def issue_client_certificate(ca: CertificateAuthority, out_file: Path, *, common_name: str) -> Path:
    """A client key + certificate chain (PEM, 0600): the broker maps it to ``User:<common_name>``."""
    return _issue(ca, out_file, common_name, [ExtendedKeyUsageOID.CLIENT_AUTH], [])


def names_with(hostnames: tuple[str, ...], ips: tuple[str, ...], host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The certificate's DNS names and IP addresses with one more host (a name or an address), if any."""
    if not host:
        return hostnames, ips
    try:
        address = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return (hostnames if host in hostnames else (*hostnames, host)), ips
    return hostnames, (ips if address in ips else (*ips, address))


def client_ssl_context(ca_file: Path | str) -> ssl.SSLContext:
    """A TLS client context that trusts only the hub's CA (hostname checked)."""
    return ssl.create_default_context(cafile=str(ca_file))
