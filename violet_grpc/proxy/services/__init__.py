"""The proxy's gRPC servicers, one module per service."""
