"""The FlagRepository contract: the same assertions against the in-memory fake and real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice.errors import FlagNotFoundError, VersionConflictError
from flagservice.flags.model import FlagDefinition
from flagservice.ports import WriteAction


def flag(key: str = "checkout", **fields: Any) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": True, **fields})


def test_create_then_get_returns_version_one(repository: Any) -> None:
    result = repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    stored = repository.get("checkout")
    assert result.action is WriteAction.CREATE and result.version == 1
    assert stored.version == 1 and stored.definition == flag()


def test_float_values_stay_floats(repository: Any) -> None:
    definition = flag(variants={"low": 1.0, "high": 2.0}, defaultVariant="low", offVariant="low")
    repository.save(definition, action=WriteAction.CREATE, actor="a", if_match=None)
    values = repository.get("checkout").definition.variants
    assert values == {"low": 1.0, "high": 2.0} and all(type(v) is float for v in values.values())


def test_second_create_is_a_replace_with_the_next_version(repository: Any) -> None:
    repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    result = repository.save(flag(enabled=False), action=WriteAction.CREATE, actor="a", if_match=None)
    assert result.action is WriteAction.REPLACE and result.version == 2
    assert repository.get("checkout").definition.enabled is False


def test_versions_are_never_reused_across_delete_and_recreate(repository: Any) -> None:
    repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    deleted = repository.delete("checkout", actor="a", if_match=None)
    recreated = repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    assert (deleted.version, recreated.version) == (2, 3)
    assert recreated.action is WriteAction.CREATE


def test_delete_hides_the_flag_but_keeps_history(repository: Any) -> None:
    repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    repository.delete("checkout", actor="b", if_match=None)
    history = repository.history("checkout", before_version=None, limit=10)
    assert repository.get("checkout") is None
    assert [(e.version, e.action, e.actor) for e in history] == [
        (2, WriteAction.DELETE, "b"),
        (1, WriteAction.CREATE, "a"),
    ]
    assert history[0].before is not None and history[0].after is None


@pytest.mark.parametrize("action", [WriteAction.PATCH, WriteAction.REPLACE, WriteAction.REVERT])
def test_updates_of_a_missing_flag_are_not_found_and_write_nothing(repository: Any, action: WriteAction) -> None:
    with pytest.raises(FlagNotFoundError):
        repository.save(flag(), action=action, actor="a", if_match=None)
    assert repository.get("checkout") is None and repository.revision() == 0


def test_delete_of_a_missing_flag_is_not_found(repository: Any) -> None:
    with pytest.raises(FlagNotFoundError):
        repository.delete("checkout", actor="a", if_match=frozenset({3}))


@pytest.mark.parametrize("if_match", [frozenset({2}), "*"])
def test_create_with_if_match_on_a_missing_flag_conflicts(repository: Any, if_match: Any) -> None:
    with pytest.raises(VersionConflictError):
        repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=if_match)
    assert repository.get("checkout") is None


def test_if_match_must_equal_the_current_version(repository: Any) -> None:
    repository.save(flag(), action=WriteAction.CREATE, actor="a", if_match=None)
    with pytest.raises(VersionConflictError):
        repository.save(flag(enabled=False), action=WriteAction.PATCH, actor="a", if_match=frozenset({2}))
    ok = repository.save(flag(enabled=False), action=WriteAction.PATCH, actor="a", if_match=frozenset({1}))
    assert ok.version == 2 and repository.get("checkout").version == 2


def test_every_write_bumps_the_revision_and_owes_a_cache_step(repository: Any) -> None:
    first = repository.save(flag("a"), action=WriteAction.CREATE, actor="x", if_match=None)
    second = repository.save(flag("b"), action=WriteAction.CREATE, actor="x", if_match=None)
    pending = repository.pending_outbox(limit=10)
    assert second.revision == first.revision + 1 == repository.revision()
    assert [(e.key, e.version, e.revision) for e in pending] == [("a", 1, first.revision), ("b", 1, second.revision)]
    repository.clear_outbox([pending[0].id])
    assert [e.key for e in repository.pending_outbox(limit=10)] == ["b"]


def test_list_pages_through_keys_in_order(repository: Any) -> None:
    for key in ["b", "a", "C", "c"]:
        repository.save(flag(key), action=WriteAction.CREATE, actor="x", if_match=None)
    repository.delete("c", actor="x", if_match=None)
    assert [f.key for f in repository.list_flags(after=None, limit=10)] == ["C", "a", "b"]
    assert [f.key for f in repository.list_flags(after="C", limit=1)] == ["a"]


def test_get_many_returns_only_live_flags(repository: Any) -> None:
    repository.save(flag("a"), action=WriteAction.CREATE, actor="x", if_match=None)
    repository.save(flag("b"), action=WriteAction.CREATE, actor="x", if_match=None)
    repository.delete("b", actor="x", if_match=None)
    assert set(repository.get_many(["a", "b", "zz"])) == {"a"}


def test_history_pages_newest_first_and_unknown_keys_are_not_found(repository: Any) -> None:
    for enabled in [True, False, True]:
        repository.save(flag(enabled=enabled), action=WriteAction.CREATE, actor="x", if_match=None)
    page = repository.history("checkout", before_version=3, limit=1)
    assert [e.version for e in page] == [2]
    assert repository.history_entry("checkout", 2).after["enabled"] is False
    assert repository.history_entry("checkout", 9) is None
    with pytest.raises(FlagNotFoundError):
        repository.history("never", before_version=None, limit=10)
