"""Settings from the environment, and secrets that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Tag
from services.settings import Secret, Settings, SettingsError


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.from_env({})
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.router_url == "https://router.huggingface.co"
    assert settings.hub_url == "https://huggingface.co"
    assert settings.mode == "durable"
    assert settings.prefix == "ai"
    assert settings.http_addr == "127.0.0.1:9464"
    assert settings.hf_token is None
    assert settings.admin_key is None, "no admin key: the console and its admin API are off"


def test_the_admin_key_is_a_secret_and_a_short_one_is_refused_without_echoing_it() -> None:
    settings = Settings.from_env({"HFBUS_ADMIN_KEY": "a-long-enough-admin-key"})
    assert settings.admin_key == Secret("a-long-enough-admin-key")
    assert "a-long-enough-admin-key" not in repr(settings)
    with pytest.raises(SettingsError, match="HFBUS_ADMIN_KEY") as refused:
        Settings.from_env({"HFBUS_ADMIN_KEY": "short-key"})
    assert "short-key" not in str(refused.value)


def test_the_token_comes_from_either_name_or_a_file(tmp_path: Path) -> None:
    assert Settings.from_env({"HUGGINGFACE_API_KEY": "hf_a", "HF_TOKEN": "hf_b"}).hf_token == Secret("hf_a")
    assert Settings.from_env({"HF_TOKEN": "hf_b"}).hf_token == Secret("hf_b")
    (tmp_path / "token").write_text("hf_c\n")
    assert Settings.from_env({"HUGGINGFACE_API_KEY_FILE": str(tmp_path / "token")}).hf_token == Secret("hf_c")


def test_a_secret_never_shows_in_repr_or_str() -> None:
    settings = Settings.from_env({"HF_TOKEN": "hf_supersecret", "NATS_PASSWORD": "natspw"})
    assert "hf_supersecret" not in repr(settings) and "natspw" not in repr(settings)
    assert "hf_supersecret" not in str(settings.hf_token)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HFBUS_MODE": "fast"}, "HFBUS_MODE"),
        ({"HFBUS_CONCURRENCY": "many"}, "HFBUS_CONCURRENCY"),
        ({"HFBUS_CONCURRENCY": "0"}, "HFBUS_CONCURRENCY"),
        ({"HFBUS_CONCURRENCY_CHAT": "lots"}, "HFBUS_CONCURRENCY_CHAT"),
        ({"HFBUS_IDLE_TIMEOUT": "-1"}, "HFBUS_IDLE_TIMEOUT"),
        ({"HFBUS_TAGS": "chat,dance"}, "dance"),
        ({"HF_TOKEN_PATH": "/nonexistent/token"}, "HF_TOKEN_PATH"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_streaming_tags_default_to_thousands_of_requests_at_once_and_media_to_a_tight_bound() -> None:
    settings = Settings.from_env({})
    assert settings.concurrency_for(Tag.CHAT) >= 1000
    assert settings.concurrency_for(Tag.PIC2TEXT) >= 1000
    for tag in (Tag.TEXT2PIC, Tag.TEXT2VID, Tag.PIC2PIC, Tag.PIC2VID, Tag.SOUND2TEXT, Tag.TEXT2SOUND, Tag.VECTORIZE):
        assert settings.concurrency_for(tag) == 64


def test_hfbus_concurrency_bounds_every_tag_and_a_per_tag_variable_wins_over_it() -> None:
    settings = Settings.from_env({"HFBUS_CONCURRENCY": "8", "HFBUS_CONCURRENCY_PIC2PIC": "2"})
    assert settings.concurrency_for(Tag.CHAT) == 8
    assert settings.concurrency_for(Tag.VECTORIZE) == 8
    assert settings.concurrency_for(Tag.PIC2PIC) == 2
    only_chat = Settings.from_env({"HFBUS_CONCURRENCY_CHAT": "5000"})
    assert only_chat.concurrency_for(Tag.CHAT) == 5000
    assert only_chat.concurrency_for(Tag.TEXT2VID) == 64


def test_tags_and_urls_are_normalised() -> None:
    settings = Settings.from_env({"HFBUS_TAGS": "pic2text, chat,chat", "HF_ROUTER_URL": "http://127.0.0.1:8089/"})
    assert settings.tags == (Tag.PIC2TEXT, Tag.CHAT)
    assert settings.router_url == "http://127.0.0.1:8089"
