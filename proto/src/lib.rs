//! The `tinfoil.v1` gRPC contract (generated code lands here).
