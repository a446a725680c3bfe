"""Options generated from the configs: help from each field, defaults from the dataclass only."""

from __future__ import annotations

import dataclasses

import pytest

from hookdiff import _config
from hookdiff._config import option
from hookdiff.cli import _COMMANDS, build_parser
from hookdiff.errors import ConfigError, closest, unknown_name_message

#: The positional arguments each command needs to parse.
POSITIONAL = {"answer": ["RUN"], "plot": ["RUN"], "ship": ["RUN"]}


def _subparser(name: str):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_every_field_is_an_option_with_its_help_and_default(name):
    sub = _subparser(name)
    by_dest = {a.dest: a for a in sub._actions}
    for cls in _COMMANDS[name].configs():
        for f in dataclasses.fields(cls):
            help_text = _config.field_help(f)
            assert len(help_text) > 10, f"{cls.__name__}.{f.name} has no help text"
            action = by_dest[f.name]
            assert action.help.startswith(help_text.replace("%", "%%")), f.name
            if f.default is not dataclasses.MISSING:
                assert _config.flag(f) in action.option_strings
                assert action.help.endswith(f"(default: {_config._shown(f)})")


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_no_options_give_the_dataclass_defaults(name):
    args = build_parser().parse_args([name, *POSITIONAL.get(name, [])])
    for cls in _COMMANDS[name].configs():
        config = _config.from_args(cls, args)
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        assert config == cls(**{k: "RUN" for k in required})


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_each_default_typed_back_as_shown_gives_the_same_config(name):
    """What --help shows as the default parses back to the default (factors, tuples, none)."""
    for cls in _COMMANDS[name].configs():
        argv = [name, *POSITIONAL.get(name, [])]
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING:
                continue
            shown = _config._shown(f)
            if _config._hints(cls)[f.name] is bool:
                argv.append(_config.flag(f) if f.default else "--no-" + _config.flag(f)[2:])
            else:
                argv.append(f"{_config.flag(f)}={shown}")
        config = _config.from_args(cls, build_parser().parse_args(argv))
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        assert config == cls(**{k: "RUN" for k in required})


def test_options_reach_the_fields_with_their_types_and_factors():
    from hookdiff.training.train import TrainConfig

    args = build_parser().parse_args(
        ["train", "--out", "x", "--max-minutes", "1.5", "--threads", "3", "--stop-after-steps=none"]
    )
    c = _config.from_args(TrainConfig, args)
    assert (c.out_dir, c.max_seconds, c.threads, c.stop_after_steps) == ("x", 90.0, 3, None)
    assert c.checkpoint_every_s == TrainConfig().checkpoint_every_s
    args = build_parser().parse_args(["study", "--ts=-1,0,2", "--no-breakpoints", "--threads", "2"])
    from hookdiff.study.config import StudyConfig

    s = _config.from_args(StudyConfig, args)
    assert (s.ts, s.breakpoints, s.threads) == ((-1.0, 0.0, 2.0), False, 2)


def test_parse_value_reads_command_line_strings_and_json_values():
    assert _config.parse_value("3", int) == 3
    assert _config.parse_value(3.0, int) == 3
    assert _config.parse_value(["a", "b"], tuple[str, ...]) == ("a", "b")
    assert _config.parse_value("none", int | None) is None
    assert _config.parse_value("false", bool) is False
    for value, hint in [("1.5", int), (True, int), ("x", float), (3, str), ("yes", bool)]:
        with pytest.raises(ValueError, match="expected"):
            _config.parse_value(value, hint)


@dataclasses.dataclass(frozen=True)
class _Toy:
    mode: str = option("fast", "How to run.", choices=("fast", "slow"))
    count: int = option(1, "How many.", min=1)


def test_check_and_from_dict_name_the_field_its_option_and_the_closest_values():
    with pytest.raises(ConfigError, match=r"_Toy.count = 0 \(--count\): expected an int >= 1"):
        _config.check(_Toy(count=0))
    with pytest.raises(ConfigError, match="closest: 'slow'") as e:
        _config.check(_Toy(mode="slo"))
    assert "'slo'," not in str(e.value).split("closest:")[1]
    with pytest.raises(ConfigError, match="closest: 'count'"):
        _config.from_dict(_Toy, {"cuont": 2})
    with pytest.raises(ConfigError, match=r"_Toy.count = 'x': expected an int"):
        _config.from_dict(_Toy, {"count": "x"})
    assert _config.from_dict(_Toy, {"count": 4}, _Toy(mode="slow")) == _Toy("slow", 4)


def test_closest_never_suggests_the_name_itself_and_falls_back_to_the_last_component():
    valid = ["a.block2.resadd_out", "a.block3.resadd_out", "a.fc_out", "b.block2.resadd_out"]
    assert closest("a.block2.resad_out", valid)[0] == "a.block2.resadd_out"
    assert "x" not in closest("x", ["x", "xy", "yx"])
    # nothing similar as a whole string: the names sharing the last dotted component
    assert closest("zzzzzzzzzzzzzzzzzzzzzzzzz.fc_out", valid) == ["a.fc_out"]
    assert closest("nothing", valid) == []
    msg = unknown_name_message("maze spec", "qq", ["vanilla-hard", "vanilla-easy"])
    assert msg == "'qq' is not a maze spec; valid: 'vanilla-hard', 'vanilla-easy'"
    many = [f"n{i}" for i in range(30)]
    assert "(30 in all)" in unknown_name_message("name", "zzz", many)
