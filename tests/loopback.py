"""Shared helpers for tests that start real servers on loopback (moto S3, mlflow server)."""

import socket

# Dummy credentials for a moto S3 server on 127.0.0.1: nothing real is ever reached.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
