"""PointPillars (Lang et al. 2019) with OpenPCDet's ``pointpillar.yaml`` architecture and settings."""
from .pointpillars import PointPillars, build_pointpillars

__all__ = ["PointPillars", "build_pointpillars"]
