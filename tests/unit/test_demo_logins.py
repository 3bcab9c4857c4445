"""The demo's closing login line names the files traitforge wrote, and for an existing
server says that its own account was used instead of pointing at a file that is not there."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from traitforge.cli.loop import demo_logins

OWNER = Path("/w/label-studio/credentials.json")
ANNOTATORS = Path("/w/argilla/annotators.json")


def _result(credentials, annotators):
    return SimpleNamespace(credentials=credentials, annotators=annotators)


def test_own_servers_name_their_files():
    line = demo_logins(_result(OWNER, None), label_studio=True)
    assert line.startswith(f"Owner login: email, password and API token in {OWNER} (mode 0600)")
    assert "simulated annotators have no login" in line
    line = demo_logins(_result(Path("/w/argilla/credentials.json"), ANNOTATORS), False)
    assert "password in /w/argilla/credentials.json" in line
    assert f"simulated annotators' logins in {ANNOTATORS}" in line


def test_an_existing_server_names_no_file_for_the_owner():
    line = demo_logins(_result(None, None), label_studio=True)
    assert "existing server's own account" in line and "LABEL_STUDIO_API_KEY" in line
    assert "credentials.json" not in line
    line = demo_logins(_result(None, ANNOTATORS), label_studio=False)
    assert "ARGILLA_API_KEY" in line and "credentials.json" not in line
