"""Certificates and SuperNode keys for a federation made on the spot.

For tests and for trying TLS and node authentication on one machine: a
self-signed CA, a server certificate signed by it, and one EC key pair per
site, in the formats Flower 1.42 reads:

- SuperLink: ``--ssl-ca-certfile ca.crt --ssl-certfile server.pem
  --ssl-keyfile server.key`` (PEM);
- SuperNode: ``--root-certificates ca.crt`` and
  ``--auth-supernode-private-key site.key`` (an ECDSA key in OpenSSH form);
- ``flwr supernode register site.key.pub <connection>`` (the public key as
  one OpenSSH line, on a NIST curve; P-384 here).

Real deployments should use certificates from their own authority.
"""
import datetime
import ipaddress
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long the certificates made here are valid.
VALID_DAYS = 30


def _write(path: str, data: bytes, private: bool = False) -> None:
    """Write ``data`` to ``path``; a private key readable by its owner only.

    Args:
        path (str): The file.
        data (bytes): Its contents.
        private (bool): Restrict the file to mode 0600.
    """
    with open(path, 'wb') as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, issuer: x509.Name, public_key,
          signing_key: ec.EllipticCurvePrivateKey, ca: bool,
          hosts: Sequence[str] = ()) -> x509.Certificate:
    """A certificate for ``subject`` signed with ``signing_key``.

    Args:
        subject (str): Common name of the certificate.
        issuer (x509.Name): Name of the signer (the subject itself for a
            self-signed CA).
        public_key: The key the certificate is for.
        signing_key (ec.EllipticCurvePrivateKey): The signer's key.
        ca (bool): A CA certificate (may sign others) or a server one.
        hosts (Sequence[str]): Server only: DNS names and IP addresses the
            certificate is valid for (its subject alternative names).

    Returns:
        x509.Certificate: The signed certificate.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                              critical=True))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                          crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=False, encipher_only=False,
                          decipher_only=False), critical=True)
    else:
        names = []
        for h in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName(names),
                                  critical=False)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(signing_key, hashes.SHA256())


def make_tls_files(out_dir: str,
                   hosts: Sequence[str] = ('127.0.0.1', 'localhost')
                   ) -> Dict[str, str]:
    """A self-signed CA and a server certificate signed by it.

    Args:
        out_dir (str): Where to write ``ca.crt``, ``ca.key``,
            ``server.pem`` and ``server.key`` (created if missing).
        hosts (Sequence[str]): Host names and IP addresses of the SuperLink
            as the SuperNodes and the ``flwr`` CLI reach it.

    Returns:
        dict: Paths ``{'ca': ..., 'certfile': ..., 'keyfile': ...}`` as
        ``flower-superlink --ssl-ca-certfile/--ssl-certfile/--ssl-keyfile``
        take them.

    Raises:
        ValueError: ``hosts`` is empty.
    """
    if not hosts:
        raise ValueError('make_tls_files: give at least one host name or '
                         'IP address for the server certificate.')
    os.makedirs(out_dir, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            'decssl_mm federation CA')])
    ca = _cert('decssl_mm federation CA', ca_name, ca_key.public_key(),
               ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP384R1())
    server = _cert(hosts[0], ca_name, server_key.public_key(), ca_key,
                   ca=False, hosts=hosts)
    paths = {k: osp.join(out_dir, f) for k, f in (
        ('ca', 'ca.crt'), ('ca_key', 'ca.key'), ('certfile', 'server.pem'),
        ('keyfile', 'server.key'))}
    _write(paths['ca'], ca.public_bytes(serialization.Encoding.PEM))
    _write(paths['ca_key'], _key_pem(ca_key), private=True)
    _write(paths['certfile'], server.public_bytes(serialization.Encoding.PEM))
    _write(paths['keyfile'], _key_pem(server_key), private=True)
    return {k: paths[k] for k in ('ca', 'certfile', 'keyfile')}


def make_node_keys(path: str) -> Tuple[str, str]:
    """An ECDSA P-384 key pair for SuperNode authentication.

    Args:
        path (str): The private key file (OpenSSH form, as
            ``--auth-supernode-private-key`` reads it); the public key goes
            to ``path + '.pub'`` (one OpenSSH line, as
            ``flwr supernode register`` reads it).

    Returns:
        tuple: ``(private key path, public key path)``.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    _write(path, key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.OpenSSH,
                                   serialization.NoEncryption()),
           private=True)
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                        serialization.PublicFormat.OpenSSH)
    _write(path + '.pub', pub + b'\n')
    return path, path + '.pub'
