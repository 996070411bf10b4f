"""The AWS Encryption SDK for Python's streaming speed, for
scripts/bench-file-encryption: `esdk_bench.py encrypt KEY_ARN SUITE FILE`
or `esdk_bench.py decrypt KEY_ARN FILE`. Streams FILE through the SDK
(client.stream, its constant-memory mode) to nowhere and prints
`seconds bytes`. The KMS endpoint comes from AWS_ENDPOINT_URL_KMS.
"""

import sys
import time

import aws_encryption_sdk
from aws_encryption_sdk import Algorithm, CommitmentPolicy, StrictAwsKmsMasterKeyProvider

mode, key = sys.argv[1], sys.argv[2]
client = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
provider = StrictAwsKmsMasterKeyProvider(key_ids=[key])
start = time.monotonic()
total = 0
if mode == "encrypt":
    suite, path = int(sys.argv[3], 16), sys.argv[4]
    with open(path, "rb") as f, client.stream(
        mode="e", source=f, key_provider=provider, algorithm=Algorithm.get_by_id(suite)
    ) as enc:
        for chunk in enc:
            total += len(chunk)
else:
    path = sys.argv[3]
    with open(path, "rb") as f, client.stream(mode="d", source=f, key_provider=provider) as dec:
        for chunk in dec:
            total += len(chunk)
print(f"{time.monotonic() - start:.3f} {total}")
