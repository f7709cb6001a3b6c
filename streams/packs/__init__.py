"""Region packs: a prefecture as plain data files — municipalities (MLIT N03), stations, hazard zones, rules and
JMA's area tables — read and validated on load (``region_pack``, ``station_file``, ``geojson``, ``rule_file``,
``jma_area_files``), and built from public data by ``bosai region init`` (``region_init``); every prefecture at
once by ``bosai region init-all`` (``national``), the prefectures and which one a station belongs to in
``prefectures``.
"""

__requires__ = ("platform",)

__layers__ = {
    "pure": ["jma_areas", "jma_area_tables", "coast", "prefectures"],
    "files": [
        "geojson",
        "station_file",
        "rule_file",
        "jma_area_files",
        "region_pack",
        "region_init",
        "jma_pack_tables",
        "national",
    ],
}
