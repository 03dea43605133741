"""The README's provider x tag table is the adapter registry, rendered: regenerate with `make readme`."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from schemas import Tag
from services.dev.provider_table import BEGIN, END, TAGS, render, rewrite
from services.hf.providers import PROVIDERS, TASKS


def readme_table(repo_root: Path) -> str:
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "the README keeps the generated table's markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_the_readme_table_is_the_registry(repo_root: Path) -> None:
    assert readme_table(repo_root) == render(), "the README's provider table is stale: run `make readme`"


def test_the_table_lists_exactly_the_supported_pairs(repo_root: Path) -> None:
    header, _, *rows = readme_table(repo_root).splitlines()
    tags = [cell.strip() for cell in header.strip("|").split("|")][1:]
    listed = set()
    for row in rows:
        provider, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        listed |= {(provider, TAGS[tag]) for tag, cell in zip(tags, cells, strict=True) if cell}
    assert listed == {(provider, task) for provider, adapters in PROVIDERS.items() for task in adapters}


def test_every_adapter_says_how_it_talks_to_its_provider() -> None:
    blank = [(p, t) for p, adapters in PROVIDERS.items() for t, adapter in adapters.items() if not adapter.wire.strip()]
    assert not blank, "set `wire` on these adapters"


def test_the_columns_are_the_non_chat_tags_and_the_tasks_their_handlers_run() -> None:
    assert sorted(TAGS.values()) == sorted(TASKS)
    assert set(TAGS) == {tag.value for tag in Tag} - {"chat", "pic2text"}
    for tag, task in TAGS.items():
        source = inspect.getsource(importlib.import_module(f"services.handlers.{tag}"))
        assert f'"{task}"' in source, f"the {tag} handler runs {task}"


def test_rewrite_replaces_only_the_block() -> None:
    text = f"intro\n{BEGIN}\nold table\n{END}\noutro\n"
    assert rewrite(text) == f"intro\n{BEGIN}\n{render()}\n{END}\noutro\n"
