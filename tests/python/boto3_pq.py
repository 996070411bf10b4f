"""Post-quantum keys (issue 16) through tinfoild's KMS endpoint with boto3
(unmodified; botocore 1.44 knows ML_DSA_*, ML_KEM_*, EXTERNAL_MU,
Encapsulate and Decapsulate), checked against pyca/cryptography (OpenSSL
4.x in its wheel) as the second implementation:

* ML-DSA-44/65/87: the public key from GetPublicKey loads as an ML-DSA
  SubjectPublicKeyInfo; RAW signatures and EXTERNAL_MU signatures (of a mu
  OpenSSL computes) verify with OpenSSL, and OpenSSL's mu verifies here;
  tampered signatures, another key, DIGEST and wrong-length mu refused.
* ML-KEM-512/768/1024: OpenSSL encapsulates to the public key (768/1024;
  its wheel has no ML-KEM-512) and Decapsulate gives the same secret;
  Encapsulate/Decapsulate round trip; implicit rejection; wrong length.
* Lifecycle: disabled and pending-deletion keys refused as other keys.

Run by tests/tests/kms_clients_pq.rs with the usual AWS_* variables.
"""

import sys
import traceback

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from cryptography.hazmat.primitives.serialization import load_der_public_key

kms = boto3.client("kms", config=Config(retries={"max_attempts": 1, "mode": "standard"}))
failures = []
ran = []


def check(name):
    def run(fn):
        ran.append(name)
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported
            failures.append(f"{name}:\n{traceback.format_exc()}")
        return fn

    return run


def code_of(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded")


DSA_TYPES = {
    "ML_DSA_44": mldsa.MLDSA44PublicKey,
    "ML_DSA_65": mldsa.MLDSA65PublicKey,
    "ML_DSA_87": mldsa.MLDSA87PublicKey,
}
KEM_TYPES = {
    "ML_KEM_512": None,
    "ML_KEM_768": mlkem.MLKEM768PublicKey,
    "ML_KEM_1024": mlkem.MLKEM1024PublicKey,
}
CT_LEN = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}
ALG = "ML_DSA_SHAKE_256"

for spec, public_type in DSA_TYPES.items():

    @check(f"{spec} sign and verify, OpenSSL verifies")
    def _(spec=spec, public_type=public_type):
        key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        assert key["KeySpec"] == spec and key["KeyUsage"] == "SIGN_VERIFY", key
        assert key["SigningAlgorithms"] == [ALG], key
        assert "EncapsulationAlgorithms" not in key, key
        key_id = key["KeyId"]
        pub = kms.get_public_key(KeyId=key_id)
        assert pub["SigningAlgorithms"] == [ALG] and pub["KeySpec"] == spec, pub
        public = load_der_public_key(pub["PublicKey"])
        assert isinstance(public, public_type), type(public)

        message = b"a message for a post-quantum signature"
        sig = kms.sign(KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm=ALG)
        assert sig["SigningAlgorithm"] == ALG
        public.verify(sig["Signature"], message)  # raises if invalid
        assert kms.verify(
            KeyId=key_id, Message=message, Signature=sig["Signature"], SigningAlgorithm=ALG
        )["SignatureValid"]

        # EXTERNAL_MU: OpenSSL computes mu from the public key and message.
        hasher = mldsa.MLDSAMuHasher(public, b"")
        hasher.update(message)
        mu = hasher.finalize()
        assert len(mu) == 64
        by_mu = kms.sign(KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm=ALG)
        public.verify(by_mu["Signature"], message)
        public.verify_mu(by_mu["Signature"], mu)
        assert kms.verify(
            KeyId=key_id,
            Message=mu,
            MessageType="EXTERNAL_MU",
            Signature=sig["Signature"],
            SigningAlgorithm=ALG,
        )["SignatureValid"]

        bad = bytearray(sig["Signature"])
        bad[10] ^= 1
        assert (
            code_of(kms.verify, KeyId=key_id, Message=message, Signature=bytes(bad), SigningAlgorithm=ALG)
            == "KMSInvalidSignatureException"
        )
        assert (
            code_of(kms.verify, KeyId=key_id, Message=b"other", Signature=sig["Signature"], SigningAlgorithm=ALG)
            == "KMSInvalidSignatureException"
        )
        for message_type, m in [("DIGEST", mu), ("EXTERNAL_MU", mu[:32])]:
            assert (
                code_of(kms.sign, KeyId=key_id, Message=m, MessageType=message_type, SigningAlgorithm=ALG)
                == "ValidationException"
            ), message_type
        assert (
            code_of(kms.sign, KeyId=key_id, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm=ALG, DryRun=True)
            == "DryRunOperationException"
        )
        assert (
            code_of(kms.sign, KeyId=key_id, Message=message, SigningAlgorithm="ECDSA_SHA_256")
            == "InvalidKeyUsageException"
        )
        assert (
            code_of(kms.encapsulate, KeyId=key_id, EncapsulationAlgorithm="ML_KEM")
            == "InvalidKeyUsageException"
        )


@check("a signature does not verify under another ML-DSA key")
def _():
    a = kms.create_key(KeySpec="ML_DSA_65", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    b = kms.create_key(KeySpec="ML_DSA_65", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sig = kms.sign(KeyId=a, Message=b"m", SigningAlgorithm=ALG)["Signature"]
    assert (
        code_of(kms.verify, KeyId=b, Message=b"m", Signature=sig, SigningAlgorithm=ALG)
        == "KMSInvalidSignatureException"
    )


@check("ML-DSA keys refuse other usages, ML-KEM keys other usages")
def _():
    for spec, usage in [
        ("ML_DSA_44", "ENCRYPT_DECRYPT"),
        ("ML_DSA_44", "ENCAPSULATE_DECAPSULATE"),
        ("ML_KEM_768", "SIGN_VERIFY"),
        ("ML_KEM_768", "KEY_AGREEMENT"),
    ]:
        assert code_of(kms.create_key, KeySpec=spec, KeyUsage=usage) == "ValidationException", (spec, usage)


for spec, public_type in KEM_TYPES.items():

    @check(f"{spec} encapsulate and decapsulate, OpenSSL encapsulates")
    def _(spec=spec, public_type=public_type):
        key = kms.create_key(KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
        assert key["KeyUsage"] == "ENCAPSULATE_DECAPSULATE", key
        assert key["EncapsulationAlgorithms"] == ["ML_KEM"], key
        assert "SigningAlgorithms" not in key and "EncryptionAlgorithms" not in key, key
        key_id = key["KeyId"]
        pub = kms.get_public_key(KeyId=key_id)
        assert pub["EncapsulationAlgorithms"] == ["ML_KEM"], pub
        if public_type is not None:
            public = load_der_public_key(pub["PublicKey"])
            assert isinstance(public, public_type), type(public)
            secret, ciphertext = public.encapsulate()
            got = kms.decapsulate(
                KeyId=key_id, SharedSecretCiphertextBlob=ciphertext, EncapsulationAlgorithm="ML_KEM"
            )
            assert got["SharedSecret"] == secret and got["EncapsulationAlgorithm"] == "ML_KEM"

        assert (
            code_of(kms.encapsulate, KeyId=key_id, EncapsulationAlgorithm="ML_KEM", DryRun=True)
            == "DryRunOperationException"
        )
        enc = kms.encapsulate(KeyId=key_id, EncapsulationAlgorithm="ML_KEM")
        assert len(enc["SharedSecret"]) == 32
        assert len(enc["SharedSecretCiphertextBlob"]) == CT_LEN[spec]
        dec = kms.decapsulate(
            KeyId=key_id,
            SharedSecretCiphertextBlob=enc["SharedSecretCiphertextBlob"],
            EncapsulationAlgorithm="ML_KEM",
        )
        assert dec["SharedSecret"] == enc["SharedSecret"]

        altered = bytearray(enc["SharedSecretCiphertextBlob"])
        altered[3] ^= 0x10
        other = kms.decapsulate(
            KeyId=key_id, SharedSecretCiphertextBlob=bytes(altered), EncapsulationAlgorithm="ML_KEM"
        )
        assert len(other["SharedSecret"]) == 32 and other["SharedSecret"] != enc["SharedSecret"]
        assert (
            code_of(
                kms.decapsulate,
                KeyId=key_id,
                SharedSecretCiphertextBlob=bytes(altered[:-1]),
                EncapsulationAlgorithm="ML_KEM",
            )
            == "InvalidCiphertextException"
        )
        assert (
            code_of(kms.sign, KeyId=key_id, Message=b"m", SigningAlgorithm=ALG)
            == "InvalidKeyUsageException"
        )


@check("Encapsulate needs an ML-KEM key and a known algorithm")
def _():
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    assert (
        code_of(kms.encapsulate, KeyId=symmetric, EncapsulationAlgorithm="ML_KEM")
        == "InvalidKeyUsageException"
    )
    kem = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]["KeyId"]
    # botocore validates the enum client-side only for types; send a bad value raw.
    try:
        kms.encapsulate(KeyId=kem, EncapsulationAlgorithm="ML_KEM_768")
        raise AssertionError("accepted")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationException", e.response


@check("disabled and pending-deletion post-quantum keys are refused")
def _():
    dsa = kms.create_key(KeySpec="ML_DSA_87", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kem = kms.create_key(KeySpec="ML_KEM_1024", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]["KeyId"]
    for key in (dsa, kem):
        kms.disable_key(KeyId=key)
    assert code_of(kms.sign, KeyId=dsa, Message=b"m", SigningAlgorithm=ALG) == "DisabledException"
    assert code_of(kms.encapsulate, KeyId=kem, EncapsulationAlgorithm="ML_KEM") == "DisabledException"
    for key in (dsa, kem):
        kms.enable_key(KeyId=key)
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert code_of(kms.sign, KeyId=dsa, Message=b"m", SigningAlgorithm=ALG) == "KMSInvalidStateException"
    assert (
        code_of(kms.decapsulate, KeyId=kem, SharedSecretCiphertextBlob=b"x" * 1568, EncapsulationAlgorithm="ML_KEM")
        == "KMSInvalidStateException"
    )


for failure in failures:
    print(failure, file=sys.stderr)
print(f"{len(ran) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
