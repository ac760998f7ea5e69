"""openapi.yaml is usable by tools: a client generated from it by openapi-python-client (into
a temporary directory, never committed) creates a session and looks it up on the real sessiond."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sessiond_instance import required_env

OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"


def test_generated_client_creates_then_looks_up(tmp_path: Path) -> None:
    generator = os.environ.get("OPENAPI_PYTHON_CLIENT", "openapi-python-client")
    output = tmp_path / "generated"
    result = subprocess.run([generator, "generate", "--path", str(OPENAPI), "--output-path", str(output),
                             "--meta", "none"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module("generated")
        create = importlib.import_module("generated.api.sessions.create_session")
        lookup = importlib.import_module("generated.api.sessions.lookup_session")
        models = importlib.import_module("generated.models")
        url = required_env("SESSIOND_URL")
        app: Any = package.AuthenticatedClient(base_url=url, token=required_env("SESSIOND_APP_KEY"))
        reader: Any = package.AuthenticatedClient(base_url=url, token=required_env("SESSIOND_READER_KEY"))
        body = models.CreateSessionRequest(user_id="generated-client", ip="198.51.100.4")
        created = create.sync_detailed(client=app, body=body)
        assert created.status_code == 201, created.content
        token = created.parsed.token
        found = lookup.sync_detailed(client=reader, x_session_token=token)
        assert found.status_code == 200, found.content
        assert found.parsed.user_id == "generated-client" and found.parsed.ip == "198.51.100.4"
        assert found.parsed.handle == created.parsed.handle
        missing = lookup.sync_detailed(client=reader, x_session_token="A" * 43)
        assert missing.status_code == 401 and missing.parsed.error.value == "invalid_session"
    finally:
        sys.path.remove(str(tmp_path))
