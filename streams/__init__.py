"""bosai hub: the real-time core of a prefecture's shared disaster-data platform (防災データ連携基盤)."""

__version__ = "0.1.0"
