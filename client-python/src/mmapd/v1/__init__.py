"""Generated protobuf and gRPC modules of ``proto/mmapd/v1/mmapd.proto`` (do not edit; see tests/test_stubs.py)."""
