"""JMA's sample reports (data/jma/) for the tests, and the variants the tests derive from them in memory.

Every variant is an edit of a real sample, marked by the function that makes it (JMA's terms: credit
「出典：気象庁」 and mark edits); nothing edited is stored in the repo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "jma"
KANAGAWA = [SAMPLES / f"17_04_0{i}_250630_VXWW50.xml" for i in (1, 2, 3)]
HAKODATE = [SAMPLES / f"17_02_0{i}_190529_VXWW50.xml" for i in (1, 2, 3)]
FUKUOKA = SAMPLES / "17_01_01_190529_VXWW50.xml"
ROKKAKU = SAMPLES / "16_02_02_220728_VXKOii.xml"
OSAKA_RECORD_RAIN = SAMPLES / "18_01_01_100806_VPOA50.xml"
SAGA_N03 = ROOT / "data" / "n03" / "N03-21_41_saga.geojson"
FUKUOKA_N03 = ROOT / "data" / "n03" / "N03-21_40_fukuoka.geojson"
SHIOMIBASHI = "89090400010000021"  # 潮見橋 水位観測所 (六角川, 武雄市)


def sample(path: Path) -> bytes:
    return path.read_bytes()


def edited(xml: bytes, *replacements: tuple[str, str]) -> bytes:
    """A sample with text replaced (each replacement must apply: a silent no-op would fake a test)."""
    text = xml.decode("utf-8")
    for old, new in replacements:
        assert old in text, f"edit {old!r} does not apply"
        text = text.replace(old, new)
    return text.encode("utf-8")


def as_exercise(xml: bytes) -> bytes:
    """EDIT: Control/Status 訓練 (an exercise) instead of 通常."""
    return edited(xml, ("<Status>通常</Status>", "<Status>訓練</Status>"))


def with_info_type(xml: bytes, info_type: str) -> bytes:
    """EDIT: Head/InfoType 訂正 or 取消 instead of 発表."""
    return edited(xml, ("<InfoType>発表</InfoType>", f"<InfoType>{info_type}</InfoType>"))


def with_area_status(xml: bytes, area_name: str, status: str) -> bytes:
    """EDIT: one Body/Warning area's Kind set to なし (or back to 警戒 発表) in a 土砂災害警戒情報."""
    text = xml.decode("utf-8")
    body = text.index("<Body")
    marker = text.index(f"<Name>{area_name}</Name>", body)
    start = text.rindex("<Kind>", body, marker)
    end = text.index("</Kind>", start) + len("</Kind>")
    name, code = ("なし", "0") if status == "なし" else ("警戒", "3")
    kind = f"<Kind><Name>{name}</Name><Code>{code}</Code><Status>{status}</Status></Kind>"
    return (text[:start] + kind + text[end:]).encode("utf-8")


def flood_with_code(xml: bytes, code: str, name: str) -> bytes:
    """EDIT: the 六角川 forecast's kind code and name (every Headline item), e.g. 40 氾濫危険情報, 10 解除."""
    return edited(
        xml, ("<Code>30</Code>", f"<Code>{code}</Code>"), ("<Name>氾濫警戒情報</Name>", f"<Name>{name}</Name>")
    )


def later(xml: bytes, report_time: str, serial: str) -> bytes:
    """EDIT: another ReportDateTime and Serial (a later report of the same event)."""
    text = xml.decode("utf-8")
    start = text.index("<ReportDateTime>") + len("<ReportDateTime>")
    end = text.index("</ReportDateTime>")
    text = text[:start] + report_time + text[end:]
    start = text.index("<Serial>") + len("<Serial>")
    end = text.index("</Serial>")
    return (text[:start] + serial + text[end:]).encode("utf-8")


def kanagawa_record_rain() -> bytes:
    """EDIT: the 大阪府 記録的短時間大雨情報 (2010) re-addressed to 神奈川県 (140000) and its office."""
    return edited(
        sample(OSAKA_RECORD_RAIN),
        ("大阪管区気象台", "横浜地方気象台"),
        ("大阪府記録的短時間大雨情報", "神奈川県記録的短時間大雨情報"),
        ("大阪市中央区", "横浜市中区"),
        ("<Name>大阪府</Name>", "<Name>神奈川県</Name>"),
        ("<Code>270000</Code>", "<Code>140000</Code>"),
        ("１１時３０分大阪府で", "１１時３０分神奈川県で"),
    )


def saga_pack_with_gauge(root: Path) -> Path:
    """A Saga pack built by ``region init`` from N03 alone, plus the 潮見橋 gauge of 六角川 with the stages JMA's
    flood forecast publishes for it (Criteria: 水防団待機 1.50, 氾濫注意 2.50, 避難判断 2.80, 氾濫危険 3.10 m).

    The gauge's position is a point inside 武雄市 (its N03 polygon), not the gauge's surveyed position,
    which the shared data does not have.
    """
    from shapely.geometry import shape

    from streams.packs.region_init import init_pack

    built = root / "saga-from-n03"
    init_pack("saga", SAGA_N03, None, built)
    takeo = next(f for f in json.loads(SAGA_N03.read_text())["features"] if f["properties"]["N03_007"] == "41206")
    point = shape(takeo["geometry"]).representative_point()
    target = root / "saga"
    shutil.copytree(built, target)
    manifest = yaml.safe_load((target / "region.yaml").read_text())
    manifest["files"]["station_settings"] = "stations.yaml"
    (target / "region.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    with open(target / "stations.csv", "a", encoding="utf-8") as handle:
        handle.write(
            f"R-41-001,river_level_gauge,潮見橋,Shiomibashi,{point.y:.5f},{point.x:.5f},,internal,{SHIOMIBASHI}\n"
        )
    stages = {"standby_m": 1.5, "caution_m": 2.5, "evacuation_m": 2.8, "danger_m": 3.1}
    (target / "stations.yaml").write_text(yaml.safe_dump({"R-41-001": {"river_stages": stages}}))
    return target
