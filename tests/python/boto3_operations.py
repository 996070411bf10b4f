"""boto3 (unmodified) against tinfoild's KMS endpoint: every operation of
issue 9 at least once, and each error path the issue names at least once.

Run by tests/tests/kms_clients_boto3.rs with AWS_ENDPOINT_URL_KMS,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION set. Every
check runs even when an earlier one failed; the failures are listed at the
end and the exit status is 1 if there was any. Requests with broken bodies
or headers are made with botocore's own event hooks (before-sign: changed
before signing, so only the content is wrong; before-send: changed after
signing, so the signature no longer matches).
"""

import datetime
import hashlib
import json
import os
import sys
import traceback

import boto3
import botocore.auth
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["AWS_ENDPOINT_URL_KMS"]
REGION = os.environ["AWS_DEFAULT_REGION"]
ACCOUNT = "111122223333"
CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})

kms = boto3.client("kms", config=CONFIG)
failures = []
ran = []
operations = set()


def track(params, model, **_):
    operations.add(model.name)


kms.meta.events.register("provide-client-params.kms.*", track)


def check(name):
    """Runs the decorated function at once as one named check."""

    def run(fn):
        ran.append(name)
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported
            failures.append(f"{name}:\n{traceback.format_exc()}")
        return fn

    return run


def error_of(call, *args, **kwargs):
    """The ClientError's code, HTTP status and message of a call that must fail."""
    try:
        answer = call(*args, **kwargs)
    except ClientError as e:
        err = e.response["Error"]
        return err.get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"], err.get("Message", ""), e.response
    raise AssertionError(f"expected an error, got {answer!r}")


def expect_error(code, call, *args, **kwargs):
    got, status, message, response = error_of(call, *args, **kwargs)
    assert got == code, f"expected {code}, got {got} ({status}): {message}"
    expected_status = 500 if code == "KMSInternalException" else 400
    assert status == expected_status, f"{code}: HTTP {status}, expected {expected_status}"
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-requestid"), f"{code}: no x-amzn-RequestId header: {headers}"
    assert headers.get("content-type") == "application/x-amz-json-1.1", f"{code}: {headers}"
    assert message, f"{code}: empty message"
    return message


def still_serving():
    assert kms.generate_random(NumberOfBytes=8)["Plaintext"].__len__() == 8


def key_arn(key_id):
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


# ---------------------------------------------------------------- keys
state = {}


@check("CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, tags at creation")
def _():
    made = kms.create_key(Description="boto3 main", Tags=[{"TagKey": "team", "TagValue": "shred"}])
    headers = made["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amzn-requestid") and made["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"], headers
    assert headers.get("content-type") == "application/x-amz-json-1.1", headers
    meta = made["KeyMetadata"]
    state["key"] = meta["KeyId"]
    assert meta["Arn"] == key_arn(meta["KeyId"]), meta
    assert meta["Enabled"] is True and meta["KeyState"] == "Enabled", meta
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT", meta
    assert isinstance(meta["CreationDate"], datetime.datetime), meta  # epoch number parsed by botocore
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"], meta
    for ident in (meta["KeyId"], meta["Arn"]):
        assert kms.describe_key(KeyId=ident)["KeyMetadata"]["KeyId"] == meta["KeyId"]
    kms.update_key_description(KeyId=meta["KeyId"], Description="renamed")
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Description"] == "renamed"
    listed = [k for page in kms.get_paginator("list_keys").paginate(Limit=1000) for k in page["Keys"]]
    assert {"KeyId": meta["KeyId"], "KeyArn": meta["Arn"]} in listed, f"{meta['KeyId']} not listed"


@check("EnableKey, DisableKey, DisabledException, NotFoundException")
def _():
    key = state["key"]
    kms.disable_key(KeyId=key)
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["Enabled"] is False and meta["KeyState"] == "Disabled", meta
    expect_error("DisabledException", kms.encrypt, KeyId=key, Plaintext=b"x")
    kms.enable_key(KeyId=key)
    kms.encrypt(KeyId=key, Plaintext=b"x")
    expect_error("NotFoundException", kms.describe_key, KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
    expect_error("NotFoundException", kms.encrypt, KeyId="alias/none", Plaintext=b"x")


@check("Encrypt, Decrypt (KeyId forms, context), ReEncrypt, IncorrectKeyException, InvalidCiphertextException")
def _():
    key = state["key"]
    arn = key_arn(key)
    other = kms.create_key(Description="boto3 other")["KeyMetadata"]["KeyId"]
    state["other"] = other
    ctx = {"tenant": "a", "purpose": "boto3"}
    enc = kms.encrypt(KeyId=arn, Plaintext=b"secret", EncryptionContext=ctx)
    assert enc["KeyId"] == arn and enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT", enc
    blob = enc["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert dec["Plaintext"] == b"secret" and dec["KeyId"] == arn, dec
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=key)["Plaintext"] == b"secret"
    expect_error("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other)
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, EncryptionContext={"tenant": "b"})
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=flipped, EncryptionContext=ctx)
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob[:20], EncryptionContext=ctx)
    re = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext=ctx,
        DestinationKeyId=other,
        DestinationEncryptionContext={"moved": "yes"},
    )
    assert re["SourceKeyId"] == arn and re["KeyId"] == key_arn(other), re
    assert re["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT", re
    assert re["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT", re
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"moved": "yes"})["Plaintext"] == b"secret"


@check("GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom")
def _():
    key = state["key"]
    dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"k": "v"})
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == key_arn(key), dk.keys()
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == dk["Plaintext"]
    dk = kms.generate_data_key(KeyId=key, NumberOfBytes=24)
    assert len(dk["Plaintext"]) == 24
    wp = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_128")
    assert "Plaintext" not in wp and wp["KeyId"] == key_arn(key), wp.keys()
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 16
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024


@check("GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext")
def _():
    key = state["key"]
    pair = kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256", EncryptionContext={"p": "1"})
    assert pair["KeyPairSpec"] == "ECC_NIST_P256" and pair["KeyId"] == key_arn(key), pair.keys()
    assert pair["PublicKey"] and pair["PrivateKeyPlaintext"], pair.keys()
    opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext={"p": "1"})
    assert opened["Plaintext"] == pair["PrivateKeyPlaintext"]
    pair = kms.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in pair and pair["PublicKey"], pair.keys()


@check("rotation: EnableKeyRotation(RotationPeriodInDays), GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, DisableKeyRotation")
def _():
    key = state["key"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    st = kms.get_key_rotation_status(KeyId=key)
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 90, st
    assert st["KeyId"] == key_arn(key), st
    old = kms.encrypt(KeyId=key, Plaintext=b"before rotation")["CiphertextBlob"]
    assert kms.rotate_key_on_demand(KeyId=key)["KeyId"] == key_arn(key)
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert len(rotations) == 1 and rotations[0]["RotationType"] == "ON_DEMAND", rotations
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before rotation"
    kms.disable_key_rotation(KeyId=key)
    st = kms.get_key_rotation_status(KeyId=key)
    assert st["KeyRotationEnabled"] is False, st
    expect_error("ValidationException", kms.enable_key_rotation, KeyId=key, RotationPeriodInDays=2561)


@check("aliases: CreateAlias, UpdateAlias, ListAliases (KeyId filter), DeleteAlias, AlreadyExistsException")
def _():
    key, other = state["key"], state["other"]
    kms.create_alias(AliasName="alias/boto3", TargetKeyId=key)
    expect_error("AlreadyExistsException", kms.create_alias, AliasName="alias/boto3", TargetKeyId=key)
    assert kms.describe_key(KeyId="alias/boto3")["KeyMetadata"]["KeyId"] == key
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/boto3"
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == key
    mine = kms.list_aliases(KeyId=key)["Aliases"]
    assert [a["AliasName"] for a in mine] == ["alias/boto3"], mine
    assert mine[0]["AliasArn"] == alias_arn and mine[0]["TargetKeyId"] == key, mine
    assert isinstance(mine[0]["CreationDate"], datetime.datetime), mine
    kms.update_alias(AliasName="alias/boto3", TargetKeyId=other)
    assert kms.list_aliases(KeyId=key)["Aliases"] == []
    assert kms.describe_key(KeyId="alias/boto3")["KeyMetadata"]["KeyId"] == other
    kms.delete_alias(AliasName="alias/boto3")
    expect_error("NotFoundException", kms.describe_key, KeyId="alias/boto3")
    expect_error("NotFoundException", kms.delete_alias, AliasName="alias/boto3")


@check("tags: TagResource, UntagResource, ListResourceTags")
def _():
    key = state["key"]
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "ci"}, {"TagKey": "team", "TagValue": "core"}])
    tags = kms.list_resource_tags(KeyId=key)
    assert {"TagKey": "team", "TagValue": "core"} in tags["Tags"], tags
    assert tags["Truncated"] is False, tags
    kms.untag_resource(KeyId=key, TagKeys=["env"])
    keys = [t["TagKey"] for t in kms.list_resource_tags(KeyId=key)["Tags"]]
    assert keys == ["team"], keys


@check("Sign, Verify, GetPublicKey, KMSInvalidSignatureException, InvalidKeyUsageException")
def _():
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert signer["SigningAlgorithms"] == ["ECDSA_SHA_256"], signer
    key = signer["KeyId"]
    sig = kms.sign(KeyId=key, Message=b"release 1.0", MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    assert sig["KeyId"] == key_arn(key) and sig["SigningAlgorithm"] == "ECDSA_SHA_256", sig.keys()
    ok = kms.verify(KeyId=key, Message=b"release 1.0", Signature=sig["Signature"], SigningAlgorithm="ECDSA_SHA_256")
    assert ok["SignatureValid"] is True, ok
    digest = hashlib.sha256(b"release 1.0").digest()
    ok = kms.verify(
        KeyId=key, Message=digest, MessageType="DIGEST", Signature=sig["Signature"], SigningAlgorithm="ECDSA_SHA_256"
    )
    assert ok["SignatureValid"] is True, ok
    expect_error(
        "KMSInvalidSignatureException",
        kms.verify,
        KeyId=key,
        Message=b"release 1.1",
        Signature=sig["Signature"],
        SigningAlgorithm="ECDSA_SHA_256",
    )
    pub = kms.get_public_key(KeyId=key)
    assert pub["KeySpec"] == "ECC_NIST_P256" and pub["KeyUsage"] == "SIGN_VERIFY", pub.keys()
    assert pub["PublicKey"][:1] == b"\x30", "DER SubjectPublicKeyInfo"
    expect_error("InvalidKeyUsageException", kms.encrypt, KeyId=key, Plaintext=b"x")
    expect_error("InvalidKeyUsageException", kms.sign, KeyId=state["key"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")


@check("GenerateMac, VerifyMac, KMSInvalidMacException")
def _():
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    mac = kms.generate_mac(KeyId=key, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert len(mac["Mac"]) == 32 and mac["MacAlgorithm"] == "HMAC_SHA_256", mac
    ok = kms.verify_mac(KeyId=key, Message=b"m", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")
    assert ok["MacValid"] is True, ok
    expect_error("KMSInvalidMacException", kms.verify_mac, KeyId=key, Message=b"n", Mac=mac["Mac"], MacAlgorithm="HMAC_SHA_256")


@check("GetKeyPolicy (default policy, valid JSON), ListKeyPolicies")
def _():
    key = state["key"]
    doc = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    policy = json.loads(doc)
    assert policy["Statement"], policy
    names = kms.list_key_policies(KeyId=key)
    assert names["PolicyNames"] == ["default"], names
    assert names["Truncated"] is False, names


@check("ScheduleKeyDeletion, KMSInvalidStateException, CancelKeyDeletion (then Disabled)")
def _():
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    expect_error("ValidationException", kms.schedule_key_deletion, KeyId=key, PendingWindowInDays=6)
    sched = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert sched["KeyState"] == "PendingDeletion" and sched["PendingWindowInDays"] == 7, sched
    assert sched["KeyId"] == key_arn(key) and isinstance(sched["DeletionDate"], datetime.datetime), sched
    expect_error("KMSInvalidStateException", kms.encrypt, KeyId=key, Plaintext=b"x")
    expect_error("KMSInvalidStateException", kms.enable_key, KeyId=key)
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"] == key_arn(key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


@check("DryRun: DryRunOperationException after the checks pass, the checks first")
def _():
    key = state["key"]
    expect_error("DryRunOperationException", kms.encrypt, KeyId=key, Plaintext=b"x", DryRun=True)
    expect_error("DryRunOperationException", kms.generate_data_key, KeyId=key, KeySpec="AES_256", DryRun=True)
    expect_error("NotFoundException", kms.encrypt, KeyId="alias/none", Plaintext=b"x", DryRun=True)


@check("ValidationException in AWS's message style")
def _():
    message = expect_error("ValidationException", kms.generate_random, NumberOfBytes=1025)
    assert message.startswith("1 validation error detected: Value"), message
    assert "failed to satisfy constraint" in message, message
    message = expect_error("ValidationException", kms.encrypt, KeyId=state["key"], Plaintext=b"x" * 4097)
    assert "failed to satisfy constraint" in message, message


@check("UnsupportedOperationException: custom key stores and multi-region")
def _():
    expect_error("UnsupportedOperationException", kms.describe_custom_key_stores)
    expect_error(
        "UnsupportedOperationException", kms.replicate_key, KeyId=state["key"], ReplicaRegion="eu-west-1"
    )
    expect_error("UnsupportedOperationException", kms.create_key, MultiRegion=True)


def with_hook(event, handler, call):
    """Runs `call` with a botocore event handler registered, then removes it."""
    kms.meta.events.register(event, handler, unique_id="tinfoil-test-hook")
    try:
        return call()
    finally:
        kms.meta.events.unregister(event, unique_id="tinfoil-test-hook")


def body_before_signing(body):
    def handler(request, **_):
        request.data = body if isinstance(body, bytes) else body.encode()
        # (botocore recomputes Content-Length when preparing the request)

    return handler


@check("SerializationException: invalid JSON, wrong base64 (signed as sent)")
def _():
    call = lambda: kms.encrypt(KeyId=state["key"], Plaintext=b"x")  # noqa: E731
    code, status, message, _ = with_hook("before-sign.kms.Encrypt", body_before_signing("{not json"), lambda: error_of(call))
    assert (code, status) == ("SerializationException", 400), (code, status, message)
    bad_b64 = json.dumps({"KeyId": state["key"], "Plaintext": "@@not base64@@"})
    code, status, message, _ = with_hook("before-sign.kms.Encrypt", body_before_signing(bad_b64), lambda: error_of(call))
    assert (code, status) == ("SerializationException", 400), (code, status, message)
    still_serving()


@check("wrong types and missing required fields (signed as sent)")
def _():
    call = lambda: kms.list_keys(Limit=10)  # noqa: E731
    code, status, message, _ = with_hook(
        "before-sign.kms.ListKeys", body_before_signing('{"Limit": "ten"}'), lambda: error_of(call)
    )
    assert status == 400 and code in ("SerializationException", "ValidationException"), (code, status, message)
    call = lambda: kms.encrypt(KeyId=state["key"], Plaintext=b"x")  # noqa: E731
    code, status, message, _ = with_hook(
        "before-sign.kms.Encrypt", body_before_signing(json.dumps({"Plaintext": "eA=="})), lambda: error_of(call)
    )
    assert (code, status) == ("ValidationException", 400), (code, status, message)
    assert "keyId" in message or "KeyId" in message, message
    still_serving()


@check("UnknownOperationException (signed as sent)")
def _():
    def rename(request, **_):
        request.headers.replace_header("X-Amz-Target", "TrentService.NoSuchOperation")

    code, status, message, _ = with_hook(
        "before-sign.kms.GenerateRandom", rename, lambda: error_of(kms.generate_random, NumberOfBytes=8)
    )
    assert (code, status) == ("UnknownOperationException", 400), (code, status, message)
    still_serving()


@check("a 10 MB body is refused without harm")
def _():
    big = json.dumps({"KeyId": state["key"], "Plaintext": "A" * (10 * 1024 * 1024)})
    try:
        with_hook(
            "before-sign.kms.Encrypt",
            body_before_signing(big),
            lambda: kms.encrypt(KeyId=state["key"], Plaintext=b"x"),
        )
        raise AssertionError("a 10 MB request succeeded")
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status in (400, 413), e.response
    except botocore.exceptions.ConnectionError:
        pass  # the endpoint may close the connection after refusing the body
    still_serving()


# ---------------------------------------------------------------- SigV4
def client_with(access_key_id=None, secret=None, **config):
    return boto3.client(
        "kms",
        aws_access_key_id=access_key_id or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
        config=CONFIG.merge(Config(**config)),
    )


def sigv4_error(client, code):
    try:
        client.generate_random(NumberOfBytes=8)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert got == code and status == 400, f"expected {code}, got {got} ({status}): {e}"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


@check("SigV4: wrong secret -> InvalidSignatureException")
def _():
    sigv4_error(client_with(secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "InvalidSignatureException")
    still_serving()


@check("SigV4: unknown access key id -> UnrecognizedClientException")
def _():
    sigv4_error(client_with(access_key_id="AKIAIOSFODNN7EXAMPLE"), "UnrecognizedClientException")
    still_serving()


@check("SigV4: unsigned -> MissingAuthenticationTokenException")
def _():
    sigv4_error(client_with(signature_version=UNSIGNED), "MissingAuthenticationTokenException")
    still_serving()


@check("SigV4: a date 20 minutes old -> InvalidSignatureException")
def _():
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda *a, **k: real(*a, **k) - datetime.timedelta(minutes=20)
    try:
        sigv4_error(client_with(), "InvalidSignatureException")
    finally:
        botocore.auth.get_current_datetime = real
    still_serving()


@check("SigV4: body changed after signing -> InvalidSignatureException")
def _():
    def change_body(request, **_):
        request.body = request.body.replace(b'"NumberOfBytes": 8', b'"NumberOfBytes": 9')
        assert b"9" in request.body, request.body

    code, status, message, _ = with_hook(
        "before-send.kms.GenerateRandom", change_body, lambda: error_of(kms.generate_random, NumberOfBytes=8)
    )
    assert (code, status) == ("InvalidSignatureException", 400), (code, status, message)
    still_serving()


@check("SigV4: a signed header changed after signing -> InvalidSignatureException")
def _():
    def change_header(request, **_):
        del request.headers["X-Amz-Target"]
        request.headers["X-Amz-Target"] = "TrentService.ListKeys"

    code, status, message, _ = with_hook(
        "before-send.kms.GenerateRandom", change_header, lambda: error_of(kms.generate_random, NumberOfBytes=8)
    )
    assert (code, status) == ("InvalidSignatureException", 400), (code, status, message)
    still_serving()


@check("SigV4: X-Amz-Security-Token accepted when signed")
def _():
    client = boto3.client(
        "kms",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        aws_session_token="tinfoil-test-session-token",
        config=CONFIG,
    )
    assert len(client.generate_random(NumberOfBytes=4)["Plaintext"]) == 4


# ---------------------------------------------------------------- summary
EXPECTED = {
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "CreateKey",
    "DescribeKey", "ListKeys", "UpdateKeyDescription", "EnableKey", "DisableKey", "ScheduleKeyDeletion",
    "CancelKeyDeletion", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus",
    "RotateKeyOnDemand", "ListKeyRotations", "CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases",
    "TagResource", "UntagResource", "ListResourceTags", "Sign", "Verify", "GetPublicKey", "GenerateMac",
    "VerifyMac", "GetKeyPolicy", "ListKeyPolicies",
}
missing = EXPECTED - operations
if missing:
    failures.append(f"operations never called: {sorted(missing)}")
print(f"{len(ran)} checks, {len(operations)} operations called, {len(failures)} failed")
for f in failures:
    print("FAILED:", f)
sys.exit(1 if failures else 0)
