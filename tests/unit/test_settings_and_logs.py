"""Settings refuse unsafe production setups; logs never show addresses or keys."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from kaskad.adapters.logs import JsonFormatter, MaskingFilter, mask
from kaskad.settings import DEVELOPMENT_SECRET, Settings

STRONG = "x" * 40


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({}, "KASKAD_SECRET_KEY"),
        ({"secret_key": DEVELOPMENT_SECRET}, "KASKAD_SECRET_KEY"),
        ({"secret_key": "short"}, "KASKAD_SECRET_KEY"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        Settings(mode="production", **overrides)  # type: ignore[arg-type]


def test_production_with_secret_and_no_sandbox_is_accepted() -> None:
    settings = Settings(mode="production", secret_key=STRONG, sandbox_enabled=False, channels={})  # type: ignore[arg-type]
    assert settings.secret == STRONG


def test_settings_from_env_and_toml(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "kaskad.toml"
    config.write_text('port = 9000\nlog_level = "DEBUG"\n[sandbox]\ndelivered_after = 7.5\n')
    monkeypatch.setenv("KASKAD_CONFIG", str(config))
    monkeypatch.setenv("KASKAD_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100  # the environment wins over the file
    assert settings.log_level == "DEBUG"
    assert settings.sandbox.delivered_after == 7.5


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASKAD_CONFIG", "/nonexistent/kaskad.toml")
    with pytest.raises(ValueError, match="no such file"):
        Settings()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("sent to +380501234567", "sent to +**********67"),
        ("phone 380501234567 done", "phone +**********67 done"),
        ("mail anna.k@bank.com.ua ok", "mail a***@bank.com.ua ok"),
        ("key ksk_abcdefghijklmnop used", "key ksk_*** used"),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("order 12345 at 2026-01-05", "order 12345 at 2026-01-05"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked


def test_json_log_lines_are_masked_and_utc() -> None:
    record = logging.LogRecord(
        "kaskad", logging.INFO, __file__, 1, "to %s", ("+380501234567",), None
    )
    MaskingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "to +**********67"
    assert line["ts"].endswith("+00:00")
