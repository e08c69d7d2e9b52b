"""The settings table (napari_structn2v.settings) feeds the Train dock and ``structn2v train`` alike:
same defaults as TrainConfig on both sides, and the same TrainConfig from the same values."""
from __future__ import annotations

import dataclasses

import pytest

from napari_structn2v.cli import OPTION_OF, build_parser, main
from napari_structn2v.cli._train import train_config
from napari_structn2v.config import RULES, TrainConfig
from napari_structn2v.settings import CLI_SETTINGS, DOCK_SETTINGS, KINDS, SETTINGS, Setting

TRAIN = ["train", "x.tif", "--axes", "YX", "--mask", "1x1", "--out", "m.pt"]
FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def parse(*options: str):
    return build_parser().parse_args([*TRAIN, *options])


def other_value(s: Setting):
    """A value of ``s`` that is not its default, inside the dock's range and the config rule."""
    if s.kind == "bool":
        return not s.default
    if s.kind == "choice":
        return next(c for c in reversed(s.choices) if c != s.default)
    if s.kind == "device":
        return "cpu"
    value = s.default + (s.step or 1)
    return int(value) if s.decimals is None else round(value, s.decimals)


def cli_options(s: Setting, value) -> list[str]:
    if s.kind == "bool":
        return [s.flags[0]] if value else []
    return [s.flags[0], str(value)]


# the table -----------------------------------------------------------------------------------
def test_each_setting_is_one_trainconfig_field_once():
    names = [s.field for s in SETTINGS]
    assert len(names) == len(set(names))
    assert set(names) <= FIELDS
    assert all(s.kind in KINDS for s in SETTINGS)
    attrs = [s.name for s in DOCK_SETTINGS]
    assert len(attrs) == len(set(attrs))
    flags = [f for s in CLI_SETTINGS for f in s.flags]
    assert len(flags) == len(set(flags))


@pytest.mark.parametrize("s", [s for s in DOCK_SETTINGS if s.limits], ids=lambda s: s.field)
def test_dock_ranges_lie_inside_the_config_rules(s):
    lo, hi = s.bounds
    assert lo is None or s.limits[0] >= lo
    assert hi is None or s.limits[1] <= hi
    assert s.limits[0] <= s.start <= s.limits[1]
    # both ends of the box are values TrainConfig accepts (open ends of a rule included)
    for end in s.limits:
        TrainConfig(**{s.field: end})


@pytest.mark.parametrize("s", [s for s in SETTINGS if s.kind == "choice"], ids=lambda s: s.field)
def test_choices_come_from_the_config_rule(s):
    assert s.choices == RULES[s.field].options
    assert s.default in s.choices


# the CLI -------------------------------------------------------------------------------------
def test_cli_defaults_are_trainconfigs():
    args = parse()
    for s in CLI_SETTINGS:
        if s.kind not in ("budget", "duration"):  # unset, so that --time alone means no step limit
            assert getattr(args, s.dest) == s.default, s.flags[0]
    assert train_config(args) == TrainConfig()


def test_cli_options_name_their_field_in_errors():
    for s in CLI_SETTINGS:
        assert OPTION_OF[s.field] == s.flags[0]


def test_a_time_budget_out_of_range_names_time(tmp_path, capsys):
    assert main([*TRAIN[:-1], str(tmp_path / "m.pt"), "--time", "99999999"]) == 2
    assert capsys.readouterr().err.startswith("structn2v: error: --time must be a finite number in (0, 10000000]")


@pytest.mark.parametrize(
    "s", [s for s in CLI_SETTINGS if s.kind in ("int", "float", "budget") and s.bounds[0] is not None],
    ids=lambda s: s.field,
)
def test_a_value_below_the_rule_names_the_option(s, tmp_path, capsys):
    below = s.bounds[0] - 1
    argv = [*TRAIN[:-1], str(tmp_path / "m.pt"), s.flags[0], str(below)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"structn2v: error: {s.flags[0]} must be "), err


def test_cli_help_lists_every_option_with_its_default(capsys):
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for s in CLI_SETTINGS:
        assert s.flags[0] in text
    assert "(default 64)" in text and "(default 0.001)" in text


# the dock (Qt) -------------------------------------------------------------------------------
@pytest.fixture
def train_dock(request):
    pytest.importorskip("napari")
    pytest.importorskip("pytestqt")
    qtbot = request.getfixturevalue("qtbot")
    viewer = request.getfixturevalue("make_napari_viewer")()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-structn2v", "Train")
    qtbot.waitUntil(lambda: widget.devices_ready, timeout=60_000)
    return widget


def set_widget(widget, s: Setting, value) -> None:
    if s.kind == "bool":
        widget.setChecked(value)
    elif s.kind in ("choice", "device"):
        widget.setCurrentText(value)
    else:
        widget.setValue(value)


def test_dock_starts_at_trainconfigs_defaults(train_dock):
    for s in DOCK_SETTINGS:
        assert getattr(train_dock, s.name) is train_dock.form.widgets[s.name]
    # only the preview differs on purpose (the dock shows one; TrainConfig's 0 means none)
    differ = {s.field: s.dock_default for s in DOCK_SETTINGS if s.dock_default is not None}
    assert differ == {"preview_every": 50}
    assert train_dock.config() == dataclasses.replace(TrainConfig(), **differ)


def test_dock_and_cli_give_the_same_config_for_the_same_values(train_dock):
    options = []
    for s in DOCK_SETTINGS:
        value = other_value(s)
        set_widget(train_dock.form.widgets[s.name], s, value)
        if s.flags:
            options += cli_options(s, value)
    dock, cli = train_dock.config(), train_config(parse(*options))
    for s in DOCK_SETTINGS:
        assert getattr(dock, s.field) == other_value(s), s.field
    dock_only = {s.field: getattr(dock, s.field) for s in DOCK_SETTINGS if not s.flags}
    assert dataclasses.replace(cli, **dock_only) == dock


def test_dock_minutes_and_cli_time_give_the_same_budget(train_dock):
    train_dock.budget_unit.setCurrentText("minutes")
    train_dock.steps.setValue(2)
    dock, cli = train_dock.config(), train_config(parse("--time", "2m"))
    assert (dock.steps, dock.max_time_s) == (cli.steps, cli.max_time_s) == (None, 120.0)
