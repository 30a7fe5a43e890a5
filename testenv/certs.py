"""A throw-away certificate authority for the test environment.

Servers that clients only talk to over TLS (the Azure Key Vault emulator, kube-apiserver) get serving
certificates from here; clients trust `CA.cert_path`. Keys are ECDSA P-256: generating one takes
milliseconds, which keeps a cold `testenv` start fast, and every client we use accepts them.

    ca = make_ca(workdir / "ca")
    cert, key = ca.issue_server_cert(workdir / "tls", "azure", ["127.0.0.1", "localhost"])
    client_cert, client_key = ca.issue_client_cert(workdir / "tls", "admin", ["system:masters"])
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a `python -m testenv up` environment that lives for days, short enough to be
# obviously a test certificate.
_VALIDITY = dt.timedelta(days=30)
# Clock skew between this machine and whatever checks the certificate.
_BACKDATE = dt.timedelta(hours=1)

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class CA:
    """A CA whose certificate and key live as PEM files in `dir`."""

    dir: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_path(self) -> Path:
        """PEM bundle for clients to trust (e.g. `connection_verify=`, `--client-ca-file`)."""
        return self.dir / CA_CERT_FILE

    @property
    def key_path(self) -> Path:
        return self.dir / CA_KEY_FILE

    def _issue(
        self,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            # Strict verifiers (Python 3.13's default VERIFY_X509_STRICT, Go) want the AKI present.
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def issue_server_cert(self, dir: Path, name: str, hosts: Sequence[str]) -> tuple[Path, Path]:
        """A serving certificate for `hosts` (IP addresses and DNS names); returns (cert, key) paths.

        The certificate file holds the leaf followed by the CA, so servers that read one chain file
        (aiohttp, kube-apiserver) present the whole chain.
        """
        if not hosts:
            raise ValueError("a server certificate needs at least one host")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
        cert, key = self._issue(subject, ExtendedKeyUsageOID.SERVER_AUTH, _san(hosts))
        cert_path, key_path = dir / f"{name}.crt", dir / f"{name}.key"
        _write_cert(cert_path, cert)
        with cert_path.open("ab") as chain:
            chain.write(self.cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return cert_path, key_path

    def issue_client_cert(self, dir: Path, name: str, organizations: Sequence[str] = ()) -> tuple[Path, Path]:
        """A client certificate with CN=`name` and one O= per organization; returns (cert, key) paths.

        Kubernetes reads CN as the user name and each O as a group, so ("admin", ["system:masters"])
        is a cluster admin.
        """
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        cert, key = self._issue(x509.Name(attrs), ExtendedKeyUsageOID.CLIENT_AUTH, None)
        safe = name.replace(":", "_").replace("/", "_")
        cert_path, key_path = dir / f"client-{safe}.crt", dir / f"client-{safe}.key"
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
        return cert_path, key_path

    @staticmethod
    def write_rsa_key(path: Path, bits: int = 2048) -> Path:
        """A PEM RSA private key (e.g. the service-account token signing key: RS256 is what
        Kubernetes and most JWT verifiers expect)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_bytes(pem)
        path.chmod(0o600)
        return path


def make_ca(dir: Path, common_name: str = "strongroom testenv CA") -> CA:
    """Load the CA kept in `dir`, or create one there.

    Reusing an existing CA lets a restarted service keep the trust bundle its clients already hold.
    """
    cert_path, key_path = dir / CA_CERT_FILE, dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{key_path} does not hold an EC key")
        return CA(dir=dir, cert=cert, key=key)

    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return CA(dir=dir, cert=cert, key=key)
