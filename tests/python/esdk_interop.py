"""The AWS Encryption SDK for Python (unmodified) against `tinfoil
encrypt-file` / `decrypt-file` messages: `esdk_interop.py JOBS.json`.

JOBS.json is a list of jobs, run in one process (the SDK's import is slow):
  {"mode": "decrypt", "key": ARN, "input": F, "output": G}
      decrypts a tinfoil message; reports the suite id and the context.
  {"mode": "encrypt", "key": ARN, "input": F, "output": G, "suite": 0x0478,
   "context": {...}, "frame_length": N}
      encrypts a file for tinfoil to decrypt (0x0378 uses the
      FORBID_ENCRYPT_ALLOW_DECRYPT policy: a legacy, non-committing message).
Prints one JSON object per job, in order, as a JSON list.
"""

import json
import sys

import aws_encryption_sdk
from aws_encryption_sdk import Algorithm, CommitmentPolicy, StrictAwsKmsMasterKeyProvider

jobs = json.load(open(sys.argv[1]))
committing = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
)
legacy = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
)
providers = {}


def provider(arn):
    if arn not in providers:
        providers[arn] = StrictAwsKmsMasterKeyProvider(key_ids=[arn])
    return providers[arn]


results = []
for job in jobs:
    with open(job["input"], "rb") as f:
        data = f.read()
    if job["mode"] == "decrypt":
        plain, header = committing.decrypt(source=data, key_provider=provider(job["key"]))
        results.append(
            {
                "suite": header.algorithm.algorithm_id,
                "context": header.encryption_context,
                "frame_length": header.frame_length,
                "keys": [k.key_provider.key_info.decode() for k in header.encrypted_data_keys],
            }
        )
        with open(job["output"], "wb") as f:
            f.write(plain)
    else:
        suite = int(job["suite"], 16) if isinstance(job["suite"], str) else job["suite"]
        client = legacy if suite == 0x0378 else committing
        sealed, header = client.encrypt(
            source=data,
            key_provider=provider(job["key"]),
            encryption_context=job.get("context", {}),
            algorithm=Algorithm.get_by_id(suite),
            frame_length=job.get("frame_length", 4096),
        )
        assert header.algorithm.algorithm_id == suite, header.algorithm
        with open(job["output"], "wb") as f:
            f.write(sealed)
        results.append({"suite": suite})
print(json.dumps(results))
