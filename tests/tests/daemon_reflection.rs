//! Server reflection and health, checked the way grpcurl uses them:
//! grpcurl is not packaged for Debian 12, so this test is a small Rust
//! grpcurl. It lists services over reflection, fetches the descriptor of
//! tinfoil.v1.KeyManagement, builds a GenerateRandom request from that
//! descriptor alone (no generated code) and calls it as raw bytes.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use tinfoil_e2e_tests::daemon::{Daemon, Store};
use tinfoil_e2e_tests::raw_grpc::RawCodec;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

async fn ask(
    client: &mut ServerReflectionClient<tonic::transport::Channel>,
    request: MessageRequest,
) -> MessageResponse {
    let outbound = tokio_stream::iter(vec![ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection stream")
        .into_inner();
    let response: ServerReflectionResponse = inbound
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    response.message_response.expect("a response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_service_and_a_raw_generate_random_works() {
    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;
    let mut reflection = ServerReflectionClient::new(channel.clone());

    // `grpcurl list`
    let MessageResponse::ListServicesResponse(list) =
        ask(&mut reflection, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"tinfoil.v1.KeyManagement"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    // `grpcurl describe tinfoil.v1.KeyManagement`
    let MessageResponse::FileDescriptorResponse(files) = ask(
        &mut reflection,
        MessageRequest::FileContainingSymbol("tinfoil.v1.KeyManagement".into()),
    )
    .await
    else {
        panic!("not a file descriptor answer");
    };
    let set = prost_types::FileDescriptorSet {
        file: files
            .file_descriptor_proto
            .iter()
            .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
            .collect(),
    };
    let pool = DescriptorPool::from_file_descriptor_set(set).expect("a valid descriptor");
    let service = pool
        .get_service_by_name("tinfoil.v1.KeyManagement")
        .expect("service described");
    let method_names: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
    for expected in [
        "CreateKey",
        "Encrypt",
        "Sign",
        "GenerateMac",
        "GenerateDataKeyPair",
    ] {
        assert!(
            method_names.iter().any(|m| m == expected),
            "{method_names:?}"
        );
    }
    let method = service
        .methods()
        .find(|m| m.name() == "GenerateRandom")
        .expect("GenerateRandom");

    // `grpcurl -d '{"number_of_bytes": 24}' ... tinfoil.v1.KeyManagement/GenerateRandom`
    let mut request = DynamicMessage::new(method.input());
    request.set_field_by_name("number_of_bytes", Value::U32(24));
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = "/tinfoil.v1.KeyManagement/GenerateRandom".parse().unwrap();
    let answer = grpc
        .unary(tonic::Request::new(request.encode_to_vec()), path, RawCodec)
        .await
        .expect("GenerateRandom")
        .into_inner();
    let response = DynamicMessage::decode(method.output(), answer.as_slice()).expect("decodes");
    let plaintext = response.get_field_by_name("plaintext").expect("plaintext");
    assert_eq!(plaintext.as_bytes().map(|b| b.len()), Some(24));

    // A raw call with a bad request gets the status and ErrorInfo too.
    let mut bad = DynamicMessage::new(method.input());
    bad.set_field_by_name("number_of_bytes", Value::U32(5000));
    let path = "/tinfoil.v1.KeyManagement/GenerateRandom".parse().unwrap();
    grpc.ready().await.expect("ready");
    let status = grpc
        .unary(tonic::Request::new(bad.encode_to_vec()), path, RawCodec)
        .await
        .expect_err("5000 random bytes were served");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1alpha_reflection_and_health_answer() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1alpha as alpha;

    let store = Store::init();
    let daemon = Daemon::start(&store, &[]);
    let channel = daemon.channel().await;

    let mut client = alpha::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let outbound = tokio_stream::iter(vec![alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    }]);
    let answer = client
        .server_reflection_info(outbound)
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer.message_response
    else {
        panic!("not a service list");
    };
    assert!(list
        .service
        .iter()
        .any(|s| s.name == "tinfoil.v1.KeyManagement"));

    let mut health = HealthClient::new(channel);
    for service in ["", "tinfoil.v1.KeyManagement"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service has no health");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}
