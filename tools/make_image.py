"""Build an update image (FirmwareManagement) from the checkout this runs in:

    python -m tools.make_image --version 9.9.9 --out FILE [--architecture noarch]
                               [--signing-key KEY.pem --signing-cert CERT.pem]

The format is docs/firmware-images.md's; the station checks it with
firmware.images.verify_image before installing anything. With a signing key
(PEM, RSA or EC, unencrypted) and its certificate, FILE.sig is written too: the
base64 SHA-256 signature of FILE that SignedUpdateFirmware's firmware.signature
carries (the certificate is its firmware.signingCertificate).
"""

import argparse
import os
import sys

from firmware.images import NOARCH, build_image

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.make_image",
                                     description="Build an update image from this checkout.")
    parser.add_argument("--version", required=True, help="the firmwareVersion of the image")
    parser.add_argument("--out", required=True, help="the image file to write")
    parser.add_argument("--architecture", default=NOARCH,
                        help="machine the image runs on (default %s: any)" % NOARCH)
    parser.add_argument("--signing-key", metavar="KEY",
                        help="PEM private key (RSA or EC): also write FILE.sig")
    parser.add_argument("--signing-cert", metavar="CERT",
                        help="PEM certificate of the signing key (with --signing-key)")
    args = parser.parse_args(argv)
    if bool(args.signing_key) != bool(args.signing_cert):
        parser.error("--signing-key and --signing-cert go together")
    try:
        key = _signing_key(args.signing_key, args.signing_cert) if args.signing_key else None
        manifest = build_image(CHECKOUT, args.version, args.out, args.architecture)
        if key is not None:
            from firmware.firmware_signature import sign_file
            with open(args.out + ".sig", "w") as f:
                f.write(sign_file(args.out, key) + "\n")
    except (ValueError, OSError) as e:
        print("make_image: error: %s" % _no_secret(e), file=sys.stderr)
        return 2
    print("%s: version %s, %s, %d files%s" % (
        args.out, manifest["version"], manifest["architecture"], len(manifest["files"]),
        ", signature in %s.sig" % args.out if key is not None else ""))
    return 0


def _no_secret(e):
    # cryptography's messages name no key material, but keep one line only
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _signing_key(key_path, cert_path):
    """The private key, checked to belong to the certificate (a mismatch would
    only be found by the station, as InvalidSignature)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(key_path, "rb") as f:
        try:
            key = serialization.load_pem_private_key(f.read(), password=None)
        except TypeError:
            raise ValueError("%s is encrypted: give an unencrypted key" % key_path)
        except ValueError:
            raise ValueError("%s is not a PEM private key" % key_path)
    with open(cert_path, "rb") as f:
        try:
            cert = x509.load_pem_x509_certificate(f.read())
        except ValueError:
            raise ValueError("%s is not a PEM certificate" % cert_path)
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise ValueError("the signing key does not belong to %s" % cert_path)
    return key


if __name__ == "__main__":
    sys.exit(main())
