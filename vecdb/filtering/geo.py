"""Geo conditions (``geo_radius``, ``geo_bounding_box``, ``geo_polygon``): one value tested as
qdrant-client's local mode tests it, and the same tests over the columns of a ``geo`` payload index.

A geo value is an object with finite numbers ``lat`` and ``lon`` (an array of them: each is a value);
anything else never matches. A radius holds points strictly closer than ``radius`` meters to its
centre on a sphere of the Earth's mean radius (haversine); a box holds points strictly inside it,
across the antimeridian when its left edge lies east of its right; a polygon holds points inside its
exterior ring or on it, and not inside (or on) any of its holes.

The index answers must equal the evaluator's, value for value. Box and polygon tests are the same
IEEE operations in the same order in numpy, so they are equal by construction; the haversine goes
through transcendental functions whose numpy and libm results may differ in the last bit, so
entries within a hair of the radius are decided by the evaluator's own function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional, Union

import numpy as np

from vecdb.models.filters import GeoBoundingBox, GeoPolygon, GeoRadius

MEAN_EARTH_RADIUS = 6371008.8
"""Meters (IUGG), as Qdrant and its local mode use."""
_NEAR = 1e-9
"""Relative band around a radius within which the index defers to :func:`haversine`."""

GeoCondition = Union[GeoRadius, GeoBoundingBox, GeoPolygon]


def lat_lon(value: Any) -> Optional[tuple[float, float]]:
    """(lat, lon) of a geo value, or None: an object whose ``lat`` and ``lon`` are finite numbers (bools
    are not numbers)."""
    if not isinstance(value, dict):
        return None
    lat: Any = value.get("lat")
    lon: Any = value.get("lon")
    if type(lat) not in (int, float) or type(lon) not in (int, float):
        return None
    try:
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
    except OverflowError:  # (an int too large for a float)
        return None
    return float(lat), float(lon)


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Meters between two points on the sphere."""
    lon1, lat1, lon2, lat2 = map(math.radians, (lon1, lat1, lon2, lat2))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return MEAN_EARTH_RADIUS * (2 * math.asin(math.sqrt(a)))  # (local mode's order of operations)


def _in_ring(lat: float, lon: float, ring: list[tuple[float, float]], ignore_boundary: bool) -> bool:
    """Ray casting over ``ring`` of (lat, lon); a point on an edge counts as inside unless ``ignore_boundary``."""
    if ring[0] == ring[-1]:
        ring = ring[:-1]
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        on_edge = (
            lon * (xi - xj) + yi * (xj - lat) + yj * (lat - xi) == 0
            and (xi - lat) * (xj - lat) <= 0
            and (yi - lon) * (yj - lon) <= 0
        )
        if on_edge:
            return not ignore_boundary
        if ((yi > lon) != (yj > lon)) and (lat < (xj - xi) * (lon - yi) / (yj - yi) + xi):
            inside = not inside
        j = i
    return inside


def _rings(polygon: GeoPolygon) -> tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]:
    exterior = [(p.lat, p.lon) for p in polygon.exterior.points]
    holes = [[(p.lat, p.lon) for p in ring.points] for ring in polygon.interiors or []]
    return exterior, holes


def value_test(condition: GeoCondition) -> Callable[[Any], bool]:
    """Whether one payload value satisfies ``condition``."""
    if isinstance(condition, GeoRadius):
        center, radius = condition.center, condition.radius

        def in_radius(value: Any) -> bool:
            point = lat_lon(value)
            return point is not None and haversine(point[1], point[0], center.lon, center.lat) < radius

        return in_radius
    if isinstance(condition, GeoBoundingBox):
        left, right = condition.top_left, condition.bottom_right

        def in_box(value: Any) -> bool:
            point = lat_lon(value)
            if point is None:
                return False
            lat, lon = point
            if left.lon > right.lon:  # across the antimeridian
                lon_ok = lon > left.lon or lon < right.lon
            else:
                lon_ok = left.lon < lon < right.lon
            return lon_ok and left.lat > lat > right.lat

        return in_box
    exterior, holes = _rings(condition)

    def in_polygon(value: Any) -> bool:
        point = lat_lon(value)
        if point is None or not _in_ring(point[0], point[1], exterior, True):
            return False
        return not any(_in_ring(point[0], point[1], hole, False) for hole in holes)

    return in_polygon


def _rings_mask(
    lats: np.ndarray, lons: np.ndarray, ring: list[tuple[float, float]], ignore_boundary: bool
) -> np.ndarray:
    """:func:`_in_ring` for every (lat, lon) at once, with the same arithmetic in the same order."""
    if ring[0] == ring[-1]:
        ring = ring[:-1]
    inside = np.zeros(len(lats), bool)
    decided = np.zeros(len(lats), bool)
    result = np.zeros(len(lats), bool)
    j = len(ring) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(ring)):
            xi, yi = ring[i]
            xj, yj = ring[j]
            on_edge = (
                (lons * (xi - xj) + yi * (xj - lats) + yj * (lats - xi) == 0)
                & ((xi - lats) * (xj - lats) <= 0)
                & ((yi - lons) * (yj - lons) <= 0)
            )
            newly = on_edge & ~decided
            result[newly] = not ignore_boundary
            decided |= newly
            crosses = ((yi > lons) != (yj > lons)) & (lats < (xj - xi) * (lons - yi) / (yj - yi) + xi)
            inside ^= crosses & ~decided
            j = i
    return np.where(decided, result, inside)  # type: ignore[no-any-return]


def mask(lats: np.ndarray, lons: np.ndarray, condition: GeoCondition) -> np.ndarray:
    """:func:`value_test` of every (lat, lon) entry, as a bool array."""
    if isinstance(condition, GeoBoundingBox):
        left, right = condition.top_left, condition.bottom_right
        if left.lon > right.lon:
            lon_ok = (lons > left.lon) | (lons < right.lon)
        else:
            lon_ok = (left.lon < lons) & (lons < right.lon)
        return lon_ok & (left.lat > lats) & (lats > right.lat)  # type: ignore[no-any-return]
    if isinstance(condition, GeoPolygon):
        exterior, holes = _rings(condition)
        out = _rings_mask(lats, lons, exterior, True)
        for hole in holes:
            out &= ~_rings_mask(lats, lons, hole, False)
        return out
    center, radius = condition.center, condition.radius
    lat1, lon1 = np.radians(lats), np.radians(lons)
    lat2, lon2 = math.radians(center.lat), math.radians(center.lon)
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * math.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    meters = MEAN_EARTH_RADIUS * (2 * np.arcsin(np.sqrt(a)))
    out = meters < radius
    for k in np.flatnonzero(np.abs(meters - radius) <= _NEAR * max(abs(radius), 1.0)).tolist():
        out[k] = haversine(float(lons[k]), float(lats[k]), center.lon, center.lat) < radius
    return out  # type: ignore[no-any-return]


__all__ = ["MEAN_EARTH_RADIUS", "GeoCondition", "haversine", "lat_lon", "mask", "value_test"]
