"""The rule file format: the default JMA rule set loads, and mistakes are named precisely."""

from __future__ import annotations

import pytest
import yaml

from streams.kernel.errors import ConfigError
from streams.packs.rule_file import load_rules


@pytest.fixture()
def default_rules(project_root):
    return yaml.safe_load((project_root / "regions/_template/rules.yaml").read_text())


def test_default_rule_set_has_the_jma_rain_intensity_bands(project_root):
    rules = load_rules(project_root / "regions/_template/rules.yaml")

    bands = rules.rule("rain_1h")
    assert [(lv.name, lv.threshold, lv.event) for lv in bands.levels] == [
        ("heavy", 20, "強い雨"),
        ("intense", 30, "激しい雨"),
        ("very_heavy", 50, "非常に激しい雨"),
        ("extreme", 80, "猛烈な雨"),
    ]
    assert bands.sharing_level == "public"
    assert [lv.warning_level for lv in rules.rule("river_stage").levels] == [2, 3, 4, 5]
    assert rules.rule("rain_3h").window_ms == 3 * 3_600_000


def test_shipped_packs_use_the_default_rule_set(project_root):
    template = (project_root / "regions/_template/rules.yaml").read_text()

    for pack in ("tochigi", "kanagawa"):
        assert (project_root / "regions" / pack / "rules.yaml").read_text() == template


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r[0].update(kind="magic"), "kind is 'magic'"),
        (lambda r: r[1].pop("window"), "missing key 'window'"),
        (lambda r: r[0].update(window="3h"), "a band rule has no window"),
        (lambda r: r[3]["levels"][0].update(threshold=2.0), "river_stage levels take their threshold from each gauge"),
        (lambda r: r[3]["levels"].reverse(), "are not in rising order"),
        (lambda r: r[0]["levels"][0].update(severity="Bad"), "severity is 'Bad'"),
        (lambda r: r[0].update(sharing_level="everyone"), "sharing_level is 'everyone'"),
        (lambda r: r[0].update(quantity="wind_speed"), "quantity is 'wind_speed'"),
        (lambda r: r[1].update(id="rain_1h"), "duplicate rule id 'rain_1h'"),
        (lambda r: r[0]["levels"][1].update(name="heavy"), "duplicate level names"),
    ],
)
def test_rule_file_mistakes_name_the_rule_and_the_problem(tmp_path, default_rules, mutate, message):
    mutate(default_rules["rules"])
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(default_rules, allow_unicode=True))

    with pytest.raises(ConfigError) as caught:
        load_rules(path)

    assert str(path) in str(caught.value) and message in str(caught.value)
