#!/usr/bin/env python3
"""Signs a URL the way AWS's own SDK does, for Edgewise's compatibility tests.

Usage: botocore_sign.py <private.pem> <key-id> <url> <expires> [custom-policy-json]

Uses botocore.signers.CloudFrontSigner with an RSA signer from the `cryptography` package
(PKCS#1 v1.5 with SHA-1, as CloudFront). Without a policy the URL gets a canned policy
expiring at <expires> (Unix seconds); with one, the custom policy JSON is signed as given
and <expires> is ignored. Prints the signed URL on stdout.
"""

import datetime
import sys


def main(argv):
    if len(argv) not in (5, 6):
        sys.stderr.write(__doc__)
        return 2
    try:
        from botocore.signers import CloudFrontSigner
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
    except ImportError as e:
        sys.stderr.write(f"missing Python package ({e}): pip install botocore cryptography\n")
        return 3

    pem_path, key_id, url, expires = argv[1], argv[2], argv[3], int(argv[4])
    with open(pem_path, "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=None)

    def rsa_signer(message):
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())

    signer = CloudFrontSigner(key_id, rsa_signer)
    if len(argv) == 6:
        signed = signer.generate_presigned_url(url, policy=argv[5])
    else:
        date_less_than = datetime.datetime.fromtimestamp(expires, tz=datetime.timezone.utc)
        signed = signer.generate_presigned_url(url, date_less_than=date_less_than)
    print(signed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
