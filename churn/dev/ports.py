"""Ports of this checkout's local services: each clone prefers its own, so two demos never collide."""

from __future__ import annotations

import hashlib
import socket
from contextlib import closing
from pathlib import Path

from churn.core.settings import PROJECT_ROOT


def checkout_id(root: Path = PROJECT_ROOT) -> str:
    """8 hex digits of the checkout's absolute path."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:8]


def checkout_port(base: int, span: int = 10000, root: Path = PROJECT_ROOT) -> int:
    """A port in [base, base + span) that depends on the checkout's path: two clones prefer different ports."""
    return base + int(checkout_id(root), 16) % span


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens on it at 127.0.0.1, else a free ephemeral port."""
    if preferred and not listening(preferred):
        return preferred
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
