"""The maintainer token: from the config, else a file next to the SQLite database."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from meshmon.errors import StartupError

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"


def token_path(storage_path: str) -> Path:
    return Path(storage_path).resolve().parent / ADMIN_TOKEN_FILE


def read_admin_token(storage_path: str) -> str:
    """The token kept next to the database ('' when there is none or it is unreadable)."""
    try:
        return token_path(storage_path).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def admin_token_for(storage_path: str) -> str:
    """The token kept next to the database, made on first use (mode 0600)."""
    path = token_path(storage_path)
    token = read_admin_token(storage_path)
    if token:
        return token
    token = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
    except OSError as exc:
        raise StartupError(
            f"cannot write the admin token {path}: {exc.strerror}; set [http] admin_token"
        ) from None
    log.info("maintainer token written to %s", path)
    return token
