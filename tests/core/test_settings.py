"""Settings: environment variables, .env files, and the docs table that lists them all."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from churn.settings import PROJECT_ROOT, Settings, join, settings_table_markdown


def test_every_setting_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CHURN_WAREHOUSE", "s3://bucket/prefix/")
    monkeypatch.setenv("CHURN_LABEL_WINDOW_DAYS", "21")
    settings = Settings()
    assert settings.warehouse == "s3://bucket/prefix"
    assert settings.label_window_days == 21
    assert settings.feature_table_path("instances_w1") == "s3://bucket/prefix/features/instances_w1"
    assert settings.events_path == "s3://bucket/prefix/raw/events"


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.delenv("CHURN_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    Path(".env").write_text("CHURN_WAREHOUSE=here\nCHURN_RAW_EVENTS=/data/events\n")
    settings = Settings()
    assert settings.warehouse == str(tmp_path / "here")
    assert settings.events_path == "/data/events"


def test_invalid_values_are_rejected_with_the_setting_name(monkeypatch):
    monkeypatch.setenv("CHURN_LABEL_WINDOW_DAYS", "zero")
    with pytest.raises(ValidationError, match="label_window_days"):
        Settings()


def test_docs_list_every_setting():
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert settings_table_markdown() in documented, "regenerate with: python -m churn.settings >> docs/configuration.md"


def test_join_handles_uris_and_folders():
    assert join("s3://b/p/", "a", "/b/") == "s3://b/p/a/b"
    assert join("/tmp/x", "a") == "/tmp/x/a"
