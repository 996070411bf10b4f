"""The AWS Encryption SDK for Python's streaming speed, for
scripts/bench-file-encryption: `esdk_bench.py encrypt KEY_ARN SUITE FILE`
or `esdk_bench.py decrypt KEY_ARN FILE`. Streams FILE through the SDK
(client.stream, its constant-memory mode) to nowhere and prints
`seconds bytes_out`, timed from after the imports and the key provider's
creation (the KMS call is inside). The KMS endpoint comes from
AWS_ENDPOINT_URL_KMS.

The stream is read READ bytes at a time. Iterating over it (the SDK
documentation's loop) reads io.DEFAULT_BUFFER_SIZE (8 KiB) per call, which
measured 10 to 25% slower than 32 KiB; larger reads get slower again (the
SDK concatenates a read's frames with bytes +=, quadratic: 1 MiB reads ran
at a third of the speed). 32 KiB was the fastest of 4 KiB to 1 MiB for
encryption and within noise of the fastest for decryption.
"""

import sys
import time

import aws_encryption_sdk
from aws_encryption_sdk import Algorithm, CommitmentPolicy, StrictAwsKmsMasterKeyProvider

READ = 32 * 1024

mode, key = sys.argv[1], sys.argv[2]
client = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
provider = StrictAwsKmsMasterKeyProvider(key_ids=[key])
start = time.monotonic()
total = 0
if mode == "encrypt":
    suite, path = int(sys.argv[3], 16), sys.argv[4]
    stream = dict(mode="e", key_provider=provider, algorithm=Algorithm.get_by_id(suite))
else:
    path = sys.argv[3]
    stream = dict(mode="d", key_provider=provider)
with open(path, "rb") as f, client.stream(source=f, **stream) as s:
    while True:
        chunk = s.read(READ)
        if not chunk:
            break
        total += len(chunk)
print(f"{time.monotonic() - start:.3f} {total}")
