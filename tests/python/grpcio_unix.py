"""Python grpcio against tinfoild's Unix socket, with default channel
options (no grpc.default_authority): the health check, server reflection
(listing services and fetching tinfoil.v1's descriptors), then CreateKey,
Encrypt and Decrypt built from those descriptors alone. Prints one line per
step; exits non-zero on the first failure. Usage: grpcio_unix.py SOCKET"""

import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICE = "tinfoil.v1.KeyManagement"


def reflect(stub, request):
    responses = stub.ServerReflectionInfo(iter([request]), timeout=10)
    return next(iter(responses))


def main(socket_path):
    channel = grpc.insecure_channel("unix:" + socket_path)

    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING, status
    status = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING, status
    print("health: SERVING")

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    listed = reflect(reflection, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = sorted(s.name for s in listed.list_services_response.service)
    assert SERVICE in names, names
    print("reflection: " + " ".join(names))

    answer = reflect(
        reflection, reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
    )
    pool = descriptor_pool.DescriptorPool()
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    added = set()
    while len(added) < len(files):
        progress = False
        for f in files:
            if f.name not in added and all(d in added for d in f.dependency if d in {x.name for x in files}):
                pool.Add(f)
                added.add(f.name)
                progress = True
        assert progress, "unresolvable descriptor dependencies"

    def method(name):
        m = pool.FindServiceByName(SERVICE).FindMethodByName(name)
        request = message_factory.GetMessageClass(m.input_type)
        response = message_factory.GetMessageClass(m.output_type)
        call = channel.unary_unary(
            "/%s/%s" % (SERVICE, name),
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        return request, call

    create_request, create = method("CreateKey")
    key_id = create(create_request(description="grpcio"), timeout=10).key_metadata.key_id
    encrypt_request, encrypt = method("Encrypt")
    plaintext = b"sent by Python grpcio over a Unix socket"
    blob = encrypt(
        encrypt_request(key_id=key_id, plaintext=plaintext, encryption_context={"by": "grpcio"}),
        timeout=10,
    ).ciphertext_blob
    decrypt_request, decrypt = method("Decrypt")
    back = decrypt(
        decrypt_request(ciphertext_blob=blob, encryption_context={"by": "grpcio"}), timeout=10
    )
    assert back.plaintext == plaintext
    print("encrypt: %d-byte ciphertext under %s decrypts" % (len(blob), key_id))

    # An error keeps its gRPC code and details over the same path.
    try:
        decrypt(decrypt_request(ciphertext_blob=b"junk"), timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.code()
        print("error: INVALID_ARGUMENT")
    else:
        raise AssertionError("junk decrypted")


if __name__ == "__main__":
    main(sys.argv[1])
