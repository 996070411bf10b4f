"""python-pkcs11 (PyPI, pinned in requirements.txt) as a client of a PKCS#11
module: sessions and login, key generation (token and session keys),
AES encrypt/decrypt (CBC-PAD, GCM), RSA and ECDSA sign/verify (checked
again outside the module with `cryptography`), RSA-OAEP, HMAC, ECDH
between two token pairs, AES key wrap and unwrap, finding
objects by attribute, destroying them, random bytes, and the errors a
wrong PIN or a missing key raise.

Usage: pkcs11_client.py MODULE TOKEN_LABEL USER_PIN [ours]
Driven by pkcs11-module/tests/python_pkcs11.rs, against our module (its
configuration in the environment) and SoftHSM2. Prints one line per step
("ok <step>") and exits non-zero at the first failure.
"""

import sys

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def step(name):
    print(f"ok {name}", flush=True)


def expect(exception, call):
    try:
        call()
    except exception:
        return
    raise AssertionError(f"expected {exception.__name__}")


def main():
    module, token_label, pin = sys.argv[1:4]
    # "ours": also what SoftHSM 2.6 lacks (SHA-256 OAEP).
    ours = sys.argv[4:5] == ["ours"]
    lib = pkcs11.lib(module)
    token = lib.get_token(token_label=token_label)
    step("token")

    expect(pkcs11.exceptions.PinIncorrect, lambda: token.open(user_pin="not-the-pin"))
    step("wrong pin refused")

    with token.open(rw=True, user_pin=pin) as session:
        message = b"python-pkcs11 says hello" * 100

        # AES, a token key: CBC-PAD (IV made by the library) and GCM.
        aes = session.generate_key(KeyType.AES, 256, label="py-aes", store=True)
        iv = session.generate_random(128)
        sealed = aes.encrypt(message, mechanism_param=iv)
        assert sealed != message
        assert aes.decrypt(sealed, mechanism_param=iv) == message
        nonce = session.generate_random(96)
        gcm = GCMParams(nonce, b"aad", 128)
        sealed = aes.encrypt(message, mechanism=Mechanism.AES_GCM, mechanism_param=gcm)
        assert len(sealed) == len(message) + 16
        assert aes.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=gcm) == message
        tampered = bytes([sealed[0] ^ 1]) + sealed[1:]
        expect(
            pkcs11.exceptions.PKCS11Error,
            lambda: aes.decrypt(tampered, mechanism=Mechanism.AES_GCM, mechanism_param=gcm),
        )
        step("aes")

        # A session key: used, then gone with the session's objects.
        temp = session.generate_key(KeyType.AES, 128, label="py-session-aes", store=False)
        assert temp.decrypt(temp.encrypt(b"x" * 16, mechanism_param=iv), mechanism_param=iv) == b"x" * 16
        assert not temp[Attribute.TOKEN]
        step("session key")

        # HMAC-SHA256 with a generic secret.
        mac_key = session.generate_key(
            KeyType.GENERIC_SECRET, 256, label="py-hmac", store=True,
            capabilities=pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY,
        )
        mac = mac_key.sign(message, mechanism=Mechanism.SHA256_HMAC)
        assert len(mac) == 32
        assert mac_key.verify(message, mac, mechanism=Mechanism.SHA256_HMAC)
        assert not mac_key.verify(message + b"!", mac, mechanism=Mechanism.SHA256_HMAC)
        step("hmac")

        # RSA-2048: PKCS#1 v1.5 and PSS signatures, OAEP.
        public, private = session.generate_keypair(
            KeyType.RSA, 2048, label="py-rsa", store=True,
        )
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(public[Attribute.MODULUS], "big"),
        ).public_key()
        signature = private.sign(message, mechanism=Mechanism.SHA256_RSA_PKCS)
        assert public.verify(message, signature, mechanism=Mechanism.SHA256_RSA_PKCS)
        numbers.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        assert not public.verify(message + b"!", signature, mechanism=Mechanism.SHA256_RSA_PKCS)
        pss = (Mechanism.SHA256, pkcs11.MGF.SHA256, 32)
        signature = private.sign(message, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss)
        numbers.verify(
            signature, message,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256(),
        )
        # OAEP with SHA-1 (all SoftHSM 2.6 offers) and, for ours, SHA-256;
        # encrypted in the module and outside it, decrypted in the module.
        for name in ["SHA1"] + (["SHA256"] if ours else []):
            mech = {"SHA1": Mechanism.SHA_1, "SHA256": Mechanism.SHA256}[name]
            oaep = (mech, getattr(pkcs11.MGF, name), None)
            sealed = public.encrypt(b"a secret", mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
            assert private.decrypt(sealed, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep) == b"a secret"
            algorithm = getattr(hashes, name)()
            outside = numbers.encrypt(
                b"from outside",
                padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None),
            )
            assert private.decrypt(outside, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep) == b"from outside"
        step("rsa")

        # ECDSA P-256.
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True,
        )
        ec_public, ec_private = params.generate_keypair(label="py-ec", store=True)
        # CKM_ECDSA over a SHA-256 digest made outside (SoftHSM 2.6 has no
        # CKM_ECDSA_SHA256; ours also hashes itself).
        digest = hashes.Hash(hashes.SHA256())
        digest.update(message)
        digest = digest.finalize()
        signature = ec_private.sign(digest, mechanism=Mechanism.ECDSA)
        assert len(signature) == 64
        assert ec_public.verify(digest, signature, mechanism=Mechanism.ECDSA)
        if ours:
            hashed = ec_private.sign(message, mechanism=Mechanism.ECDSA_SHA256)
            assert ec_public.verify(message, hashed, mechanism=Mechanism.ECDSA_SHA256)
            assert ec_public.verify(digest, hashed, mechanism=Mechanism.ECDSA)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"),
        )
        outside = serialization.load_der_public_key(encode_ec_public_key(ec_public))
        outside.verify(der, message, ec.ECDSA(hashes.SHA256()))
        try:
            outside.verify(der, message + b"!", ec.ECDSA(hashes.SHA256()))
            raise AssertionError("a wrong message verified")
        except InvalidSignature:
            pass
        step("ecdsa")

        # ECDH P-256 between two token pairs (KDF NULL, raw peer points):
        # both sides derive the same AES key.
        bob_public, bob_private = params.generate_keypair(label="py-ec-bob", store=True)
        flags = pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT

        def raw_point(public):
            der = public[Attribute.EC_POINT]
            assert der[0] == 0x04 and der[1] == 65, der[:2].hex()
            return der[2:]

        alice_key = ec_private.derive_key(
            KeyType.AES, 256, capabilities=flags,
            mechanism_param=(pkcs11.KDF.NULL, None, raw_point(bob_public)),
        )
        bob_key = bob_private.derive_key(
            KeyType.AES, 256, capabilities=flags,
            mechanism_param=(pkcs11.KDF.NULL, None, raw_point(ec_public)),
        )
        sealed = alice_key.encrypt(message, mechanism_param=iv)
        assert bob_key.decrypt(sealed, mechanism_param=iv) == message
        step("ecdh")

        # AES key wrap (RFC 3394) of an extractable session key, unwrapped
        # as a new key that decrypts what the first encrypted.
        kek = session.generate_key(KeyType.AES, 256, label="py-kek", store=True)
        target = session.generate_key(
            KeyType.AES, 256, label="py-wrapped", store=False,
            template={Attribute.EXTRACTABLE: True},
        )
        wrapped = kek.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)
        assert len(wrapped) == 40
        unwrapped = kek.unwrap_key(
            ObjectClass.SECRET_KEY, KeyType.AES, wrapped, label="py-unwrapped",
            mechanism=Mechanism.AES_KEY_WRAP, capabilities=flags,
        )
        sealed = target.encrypt(message, mechanism_param=iv)
        assert unwrapped.decrypt(sealed, mechanism_param=iv) == message
        tampered = bytes([wrapped[0] ^ 1]) + wrapped[1:]
        expect(
            pkcs11.exceptions.PKCS11Error,
            lambda: kek.unwrap_key(
                ObjectClass.SECRET_KEY, KeyType.AES, tampered,
                mechanism=Mechanism.AES_KEY_WRAP, capabilities=flags,
            ),
        )
        step("wrap")

        # Finding: by label and class, all secret keys, by id.
        assert session.get_key(label="py-aes").key_type == KeyType.AES
        assert session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="py-rsa").key_type == KeyType.RSA
        secrets = {k.label for k in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})}
        assert {"py-aes", "py-hmac", "py-session-aes"} <= secrets, secrets
        expect(pkcs11.exceptions.NoSuchKey, lambda: session.get_key(label="no-such-key"))
        step("find")

        # Destroy: gone from searches.
        mac_key.destroy()
        expect(pkcs11.exceptions.NoSuchKey, lambda: session.get_key(label="py-hmac"))
        step("destroy")

        assert len(session.generate_random(256 * 8)) == 256
        step("random")

    # Token objects stay; session objects went with the session.
    with token.open(user_pin=pin) as session:
        assert session.get_key(label="py-aes").key_type == KeyType.AES
        expect(pkcs11.exceptions.NoSuchKey, lambda: session.get_key(label="py-session-aes"))
        step("persisted")


if __name__ == "__main__":
    main()
