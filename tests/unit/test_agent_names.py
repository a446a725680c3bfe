"""Shipped agents by name: listing, resolving, and the names a many-agent study gives them."""

from __future__ import annotations

import json

import pytest

from hookdiff.agent import available_agents, resolve_checkpoint, shipped_name
from hookdiff.agent.family import card_path
from hookdiff.errors import ConfigError
from hookdiff.study.run import _agent_names


def test_available_agents_are_read_from_the_cards_beside_them():
    agents = available_agents()
    assert list(agents)[0] == "shipped"
    for name, path in agents.items():
        assert path.is_file() and json.loads(card_path(path).read_text())["agent"] == name
        assert shipped_name(path) == name and resolve_checkpoint(name) == str(path)


def test_a_file_wins_over_a_name_and_an_unknown_name_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shipped").write_bytes(b"a file of mine")
    assert resolve_checkpoint("shipped") == "shipped"
    assert shipped_name(tmp_path / "shipped") is None
    with pytest.raises(ConfigError, match="neither a checkpoint file nor a shipped agent"):
        resolve_checkpoint("nope")


def test_a_many_agent_study_names_shipped_agents_by_name_and_others_by_file():
    shipped = str(available_agents()["shipped"])
    names = _agent_names([shipped, "runs/x/policy.pt", "runs/y/policy.pt", None])
    assert names == ["shipped", "policy", "policy_2", "shipped_2"]


def test_a_shortened_schedule_is_on_the_cards_command():
    from hookdiff.training.ship import _resume_note

    change = {"samples": 512, "schedule_change": {"total_samples": [2048, 512]}}
    assert _resume_note([], 2048) == "  # resumable: rerun to continue"
    assert "after 512 samples rerun it with --total-samples 512" in _resume_note([change], 512)
