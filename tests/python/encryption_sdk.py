"""The AWS Encryption SDK for Python (unmodified) with a Tinfoil key:
`encryption_sdk.py WORKDIR`.

The SDK finds the endpoint the way every botocore client does
(AWS_ENDPOINT_URL_KMS). Encrypts and decrypts a 5 MB file with
StrictAwsKmsMasterKeyProvider and an encryption context; checks the
context the SDK reports (its documented check for master-key providers);
shows that a message whose stored context was changed does not decrypt
(Tinfoil refuses the data key: the context is bound to it); and that after
DisableKey nothing decrypts until EnableKey.
"""

import filecmp
import logging
import os
import sys

import aws_encryption_sdk
import boto3
from aws_encryption_sdk import CommitmentPolicy, StrictAwsKmsMasterKeyProvider
from aws_encryption_sdk.exceptions import DecryptKeyError
from botocore.exceptions import ClientError



class KmsErrors(logging.Handler):
    """The KMS error codes behind the SDK's DecryptKeyError (the SDK logs
    the botocore ClientError it turns into DecryptKeyError)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.codes = []

    def emit(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ClientError):
            self.codes.append(error.response["Error"]["Code"])


kms_errors = KmsErrors()
logging.getLogger("aws_encryption_sdk").addHandler(kms_errors)
logging.getLogger("aws_encryption_sdk").propagate = False

work = sys.argv[1]
kms = boto3.client("kms")
key_arn = kms.create_key(Description="encryption sdk")["KeyMetadata"]["Arn"]

client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_arn])
context = {"tenant": "tenant-a", "purpose": "backup"}

plain = os.path.join(work, "backup.tar")
sealed = os.path.join(work, "backup.tar.encrypted")
opened = os.path.join(work, "backup.tar.decrypted")
with open(plain, "wb") as f:
    f.write(os.urandom(5 * 1024 * 1024))


def encrypt_file(src, dst):
    with open(src, "rb") as i, open(dst, "wb") as o:
        with client.stream(mode="e", source=i, key_provider=provider, encryption_context=context) as enc:
            for chunk in enc:
                o.write(chunk)
        return enc.header


def decrypt_file(src, dst):
    with open(src, "rb") as i, open(dst, "wb") as o:
        with client.stream(mode="d", source=i, key_provider=provider) as dec:
            for chunk in dec:
                o.write(chunk)
        return dec.header


header = encrypt_file(plain, sealed)
assert [k.key_provider.key_info.decode() for k in header.encrypted_data_keys] == [key_arn], header.encrypted_data_keys
assert os.path.getsize(sealed) > 5 * 1024 * 1024
header = decrypt_file(sealed, opened)
assert filecmp.cmp(plain, opened, shallow=False), "the decrypted file differs"
# The SDK's documented check: the context it reports holds what we expect.
for k, v in context.items():
    assert header.encryption_context.get(k) == v, header.encryption_context
print("5 MB file encrypted and decrypted")

# A message whose stored context was changed (same length, so it still
# parses): Tinfoil refuses to decrypt the data key under the other context.
data = open(sealed, "rb").read()
assert data.count(b"tenant-a") == 1
tampered = os.path.join(work, "tampered.encrypted")
with open(tampered, "wb") as f:
    f.write(data.replace(b"tenant-a", b"tenant-b"))
try:
    decrypt_file(tampered, os.path.join(work, "tampered.out"))
    raise AssertionError("a message with a changed encryption context decrypted")
except DecryptKeyError:
    # The SDK asks KMS for the data key with the stored context before it
    # checks the header's tag: Tinfoil refused it.
    assert kms_errors.codes == ["InvalidCiphertextException"], kms_errors.codes
print("a changed encryption context is refused")

# The expected-context check refuses a message made under another context.
other = os.path.join(work, "other.encrypted")
with open(plain, "rb") as i, open(other, "wb") as o:
    with client.stream(mode="e", source=i, key_provider=provider, encryption_context={"tenant": "tenant-b"}) as enc:
        for chunk in enc:
            o.write(chunk)
header = decrypt_file(other, os.path.join(work, "other.out"))
assert header.encryption_context.get("tenant") != context["tenant"], "the check cannot tell contexts apart"

# Revocation: after DisableKey the file does not decrypt; after EnableKey it does.
kms.disable_key(KeyId=key_arn)
kms_errors.codes.clear()
try:
    decrypt_file(sealed, opened)
    raise AssertionError("decrypted with a disabled key")
except DecryptKeyError:
    assert kms_errors.codes == ["DisabledException"], kms_errors.codes
print("DisableKey stops decryption")
kms.enable_key(KeyId=key_arn)
decrypt_file(sealed, opened)
assert filecmp.cmp(plain, opened, shallow=False)
print("EnableKey restores it")
