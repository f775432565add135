"""The `kaskad` command on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kaskad.adapters.storage.database import create_db_engine
from kaskad.interfaces.cli.main import cli
from kaskad.services import apikeys, contacts
from kaskad.services.errors import NotFound

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KASKAD_DATABASE_URL", database_url)
    monkeypatch.setenv("KASKAD_LOG_LEVEL", "WARNING")
    return database_url


def _uow(url: str):  # type: ignore[no-untyped-def]
    from kaskad.adapters.storage.unit_of_work import UnitOfWork

    return UnitOfWork(create_db_engine(url))


def test_apikey_create_prints_the_key_last(env: str) -> None:
    result = runner.invoke(cli, ["apikey", "create", "--name", "crm"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("ksk_")
    assert apikeys.key_name(_uow(env), key=key) == "crm"
    assert runner.invoke(cli, ["apikey", "revoke", "--name", "crm"]).exit_code == 0
    assert apikeys.key_name(_uow(env), key=key) is None


def test_db_current_and_upgrade(env: str) -> None:
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(cli, ["db", "current"])
    assert result.exit_code == 0
    assert "current" in result.output


CSV_OK = """external_id,phone,email,timezone,attr.first_name,attr.age:int,consent.sms.marketing
a1,+380501234567,a1@example.com,,Anna,31,true
a2,+380671112233,,Europe/Warsaw,Bohdan,,
"""
CSV_BAD = (
    CSV_OK
    + """a3,12345,,,Carol,,
a4,+380501234568,,,Dan,old,
a1,+380501234569,,,Dup,,
"""
)


def test_contacts_import(env: str, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(CSV_OK)
    result = runner.invoke(cli, ["contacts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported 2 contact(s): 2 new, 0 updated" in result.output
    anna = contacts.get_contact(_uow(env), external_id="a1")
    assert anna["attributes"] == {"first_name": "Anna", "age": 31}
    assert anna["consents"] == {"sms": {"marketing": True}}
    assert anna["timezone"] == "Europe/Kyiv"
    assert contacts.get_contact(_uow(env), external_id="a2")["timezone"] == "Europe/Warsaw"


def test_contacts_import_rejects_and_imports_nothing(env: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(CSV_BAD)
    result = runner.invoke(cli, ["contacts", "import", str(path)])
    assert result.exit_code == 1
    assert "3 rejected row(s)" in result.output
    assert "nothing imported" in result.output
    assert "duplicate of line 2" in result.output
    with pytest.raises(NotFound):
        contacts.get_contact(_uow(env), external_id="a1")
    result = runner.invoke(cli, ["contacts", "import", str(path), "--skip-invalid"])
    assert result.exit_code == 1
    assert "imported 2 contact(s)" in result.output
    assert contacts.get_contact(_uow(env), external_id="a2")["attributes"]["first_name"] == "Bohdan"


def test_contacts_import_unreadable(env: str, tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("phone\n+380501234567\n")
    result = runner.invoke(cli, ["contacts", "import", str(path)])
    assert result.exit_code == 2
    assert "external_id" in result.output


def test_configuration_errors_exit_nonzero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASKAD_MODE", "production")
    monkeypatch.delenv("KASKAD_SECRET_KEY", raising=False)
    result = runner.invoke(cli, ["db", "current"])
    assert result.exit_code == 2
    assert "KASKAD_SECRET_KEY" in result.output


def test_demo_seeds_contacts_and_prints_a_working_key(env: str) -> None:
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    keys = [w for w in result.output.split() if w.startswith("ksk_")]
    assert keys
    assert apikeys.key_name(_uow(env), key=keys[0]) == "demo"
    assert contacts.get_contact(_uow(env), external_id="demo-anna")["phone"] == "+380501234567"
    assert "/v1/notifications" in result.output
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 0  # seeding twice is fine; the old demo key is revoked
    assert apikeys.key_name(_uow(env), key=keys[0]) is None


def test_apikey_needs_a_name(env: str) -> None:
    result = runner.invoke(cli, ["apikey", "create", "--name", "  "])
    assert result.exit_code == 2
    assert "needs a name" in result.output
