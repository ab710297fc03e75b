"""Firebase apps for the Cloud Storage and Firestore backends: credentials and emulators.

Credentials, first match wins:

1. an emulator is configured (``FIRESTORE_EMULATOR_HOST`` / ``STORAGE_EMULATOR_HOST``): an
   anonymous credential that signs nothing (the emulators check no tokens);
2. a service-account JSON file: the ``credentials`` argument, else ``VIOLET_FIREBASE_CREDENTIALS``,
   else ``db/violet.json`` when that file exists (the seed's location);
3. application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud, metadata server).

Each store opens its own named app, so two stores in one process (two proxy replicas in a
test) are independent clients of the same data, and closing one leaves the other working.
"""
from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any

from violet_grpc import errors

#: Where the seed keeps the Firebase service-account key.
DEFAULT_CREDENTIALS_PATH = "db/violet.json"
CREDENTIALS_ENV = "VIOLET_FIREBASE_CREDENTIALS"
FIRESTORE_EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"
STORAGE_EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
#: Project id used against emulators when none is given (``demo-`` ids never reach Google).
EMULATOR_PROJECT = "demo-violet"

_lock = threading.Lock()


def _emulator_credential() -> Any:
    from firebase_admin import credentials
    from google.auth.credentials import AnonymousCredentials

    class EmulatorCredential(credentials.Base):
        """A firebase_admin credential for emulators: anonymous, signs nothing."""

        def get_credential(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    return EmulatorCredential()


def resolve_credential(emulator_env: str, credentials_path: str | None) -> Any:
    """The firebase_admin credential to use (see the module docstring for the order)."""
    if os.environ.get(emulator_env):
        return _emulator_credential()
    from firebase_admin import credentials

    explicit = credentials_path or os.environ.get(CREDENTIALS_ENV, "")
    path = Path(explicit or DEFAULT_CREDENTIALS_PATH)
    if path.is_file():
        try:
            return credentials.Certificate(str(path))
        except (ValueError, OSError) as exc:
            raise errors.FailedPrecondition(
                f"the Firebase service-account file {path} is not a valid key: {exc}",
                reason="BAD_FIREBASE_CREDENTIALS", metadata={"path": str(path)},
            ) from exc
    if explicit:
        raise errors.FailedPrecondition(
            f"the Firebase service-account file {path} does not exist (set {CREDENTIALS_ENV} to a key file,"
            " or leave it empty for application default credentials)",
            reason="FIREBASE_CREDENTIALS_MISSING", metadata={"path": str(path)},
        )
    return credentials.ApplicationDefault()


def open_app(kind: str, emulator_env: str, credentials_path: str | None, options: dict[str, Any]) -> Any:
    """Initializes a fresh, uniquely named firebase_admin app."""
    import firebase_admin

    credential = resolve_credential(emulator_env, credentials_path)
    if os.environ.get(emulator_env) and not options.get("projectId"):
        options = {**options, "projectId": os.environ.get("GOOGLE_CLOUD_PROJECT", EMULATOR_PROJECT)}
    with _lock:
        return firebase_admin.initialize_app(credential, options, name=f"violet-{kind}-{uuid.uuid4().hex}")


def close_app(app: Any) -> None:
    """Deletes an app opened by :func:`open_app` (idempotent)."""
    import firebase_admin

    with _lock:
        try:
            firebase_admin.delete_app(app)
        except ValueError:
            pass  # already deleted
