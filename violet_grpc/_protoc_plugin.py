"""A protoc plugin that runs grpcio-tools' built-in gRPC Python generator.

buf can only call plugins that speak the plugin protocol, and grpcio-tools keeps its gRPC
generator inside its bundled protoc. This shim takes buf's CodeGeneratorRequest, hands the
same descriptors to that protoc, and returns what it wrote, so `buf generate` needs nothing
from a remote registry. Used from buf.gen.yaml as ``python -m violet_grpc._protoc_plugin``.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def _generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp) / "in.binpb"
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        file_set = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        descriptors.write_bytes(file_set.SerializeToString())
        args = [
            "protoc",
            f"--descriptor_set_in={descriptors}",
            f"--grpc_python_out={out_dir}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed on " + ", ".join(request.file_to_generate)
            return response
        for path in sorted(out_dir.rglob("*.py")):
            generated = response.file.add()
            generated.name = str(path.relative_to(out_dir))
            generated.content = path.read_text()
    return response


def main() -> None:
    """Reads a CodeGeneratorRequest on stdin and writes the response to stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(_generate(request).SerializeToString())


if __name__ == "__main__":
    main()
