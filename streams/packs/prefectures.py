"""Japan's 47 prefectures (JIS X 0401 code, name, romaji pack name) and which prefecture a station belongs to.

A station table covering the whole country serves every pack: each pack keeps the stations inside its
municipalities (N03 polygons), and a station outside every polygon of the pack (an island, a coastal
station the simplified boundaries miss) only when it lies within the pack's nearest-municipality reach
**and** its prefecture by outline (:func:`outline_owners`: the prefecture outline holding it, else the
nearest one) is the pack's. So a station near a border, within reach of the neighbour's municipalities,
still goes to its own prefecture, and two packs never both take it by the fallback. Pure: geometries in,
codes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

# JIS X 0401 code -> (name as N03_001 writes it, pack name in romaji)
PREFECTURES: dict[str, tuple[str, str]] = {
    "01": ("北海道", "hokkaido"),
    "02": ("青森県", "aomori"),
    "03": ("岩手県", "iwate"),
    "04": ("宮城県", "miyagi"),
    "05": ("秋田県", "akita"),
    "06": ("山形県", "yamagata"),
    "07": ("福島県", "fukushima"),
    "08": ("茨城県", "ibaraki"),
    "09": ("栃木県", "tochigi"),
    "10": ("群馬県", "gunma"),
    "11": ("埼玉県", "saitama"),
    "12": ("千葉県", "chiba"),
    "13": ("東京都", "tokyo"),
    "14": ("神奈川県", "kanagawa"),
    "15": ("新潟県", "niigata"),
    "16": ("富山県", "toyama"),
    "17": ("石川県", "ishikawa"),
    "18": ("福井県", "fukui"),
    "19": ("山梨県", "yamanashi"),
    "20": ("長野県", "nagano"),
    "21": ("岐阜県", "gifu"),
    "22": ("静岡県", "shizuoka"),
    "23": ("愛知県", "aichi"),
    "24": ("三重県", "mie"),
    "25": ("滋賀県", "shiga"),
    "26": ("京都府", "kyoto"),
    "27": ("大阪府", "osaka"),
    "28": ("兵庫県", "hyogo"),
    "29": ("奈良県", "nara"),
    "30": ("和歌山県", "wakayama"),
    "31": ("鳥取県", "tottori"),
    "32": ("島根県", "shimane"),
    "33": ("岡山県", "okayama"),
    "34": ("広島県", "hiroshima"),
    "35": ("山口県", "yamaguchi"),
    "36": ("徳島県", "tokushima"),
    "37": ("香川県", "kagawa"),
    "38": ("愛媛県", "ehime"),
    "39": ("高知県", "kochi"),
    "40": ("福岡県", "fukuoka"),
    "41": ("佐賀県", "saga"),
    "42": ("長崎県", "nagasaki"),
    "43": ("熊本県", "kumamoto"),
    "44": ("大分県", "oita"),
    "45": ("宮崎県", "miyazaki"),
    "46": ("鹿児島県", "kagoshima"),
    "47": ("沖縄県", "okinawa"),
}

CODE_BY_NAME = {name: code for code, (name, _) in PREFECTURES.items()}


def pack_name(prefecture_code: str) -> str:
    """The romaji pack name of a prefecture (``09`` → ``tochigi``); KeyError for a code that is none."""
    return PREFECTURES[prefecture_code][1]


def outline_owners(
    lats: Sequence[float], lons: Sequence[float], outlines: Mapping[str, BaseGeometry]
) -> list[str | None]:
    """The prefecture code of each point by the outlines (code -> WGS84 outline): the outline holding it, else
    the nearest one (distances in a local equirectangular projection); None when there are no outlines."""
    codes = sorted(outlines)
    if not codes:
        return [None] * len(lats)
    geometries = [outlines[c] for c in codes]
    tree = shapely.STRtree(geometries)
    # the stubs answer `Point | array` for array-likes: arrays in give an array out
    points = cast("NDArray[np.object_]", shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)))
    owners: list[str | None] = [None] * len(lats)
    if len(points):
        inside, which = tree.query(points, predicate="intersects")
        for i, j in sorted(zip(inside.tolist(), which.tolist(), strict=True)):
            if owners[i] is None:  # several (a shared border): the lowest code, deterministic
                owners[i] = codes[j]
    for i, owner in enumerate(owners):
        if owner is not None:
            continue
        scale = math.cos(math.radians(lats[i]))
        nearby = tree.query(points[i].buffer(1.0))  # candidates within about 100 km first
        candidates = nearby.tolist() if len(nearby) else range(len(codes))
        best = min(candidates, key=lambda j: (_scaled_distance(geometries[j], lats[i], lons[i], scale), codes[j]))
        owners[i] = codes[best]
    return owners


def _scaled_distance(geometry: BaseGeometry, lat: float, lon: float, scale: float) -> float:
    """Distance in degrees of latitude, longitude scaled by cos(latitude) (good enough to pick the nearest)."""
    nearest = shapely.shortest_line(shapely.Point(lon, lat), geometry)
    (x0, y0), (x1, y1) = nearest.coords
    return math.hypot((x1 - x0) * scale, y1 - y0)
