"""Intersection-over-union of rotated rectangles (bird's eye view) and of 3D boxes.

The overlap of two rectangles is found by clipping one against the four edges of the other
(Sutherland-Hodgman), for all pairs at once; its area follows from the shoelace formula.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rect_corners", "polygon_area", "clip_convex", "rotated_intersection", "rotated_iou", "box3d_iou", "image_box_iou"]

_MAX_VERTS = 8  # a rectangle clipped by four half-planes has at most eight vertices


def rect_corners(rects: np.ndarray) -> np.ndarray:
    """(N, 4, 2) counter-clockwise corners of rectangles ``(cx, cy, length, width, angle)``."""
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    unit = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    local = unit[None] * rects[:, None, 2:4]
    c, s = np.cos(rects[:, 4])[:, None], np.sin(rects[:, 4])[:, None]
    x = local[..., 0] * c - local[..., 1] * s + rects[:, None, 0]
    y = local[..., 0] * s + local[..., 1] * c + rects[:, None, 1]
    return np.stack([x, y], axis=-1)


def polygon_area(verts: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Area of polygons (N, V, 2) whose first ``count`` vertices are valid (shoelace formula)."""
    n, v = verts.shape[:2]
    idx = np.arange(v)[None].repeat(n, 0)
    nxt = np.where(idx + 1 < count[:, None], idx + 1, 0)
    valid = idx < count[:, None]
    x, y = verts[..., 0], verts[..., 1]
    xn = np.take_along_axis(x, nxt, 1)
    yn = np.take_along_axis(y, nxt, 1)
    cross = np.where(valid, x * yn - xn * y, 0.0)
    return np.abs(cross.sum(1)) / 2


def clip_convex(poly: np.ndarray, count: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip polygons (N, V, 2) to the left half-plane of the directed edges ``a -> b`` (N, 2) each."""
    n, v = poly.shape[:2]
    idx = np.arange(v)[None].repeat(n, 0)
    valid = idx < count[:, None]
    nxt_idx = np.where(idx + 1 < count[:, None], idx + 1, 0)
    cur = poly
    nxt = np.take_along_axis(poly, nxt_idx[..., None].repeat(2, -1), 1)
    edge = (b - a)[:, None, :]

    def side(p):  # > 0 left of the edge (inside for counter-clockwise clip polygons)
        rel = p - a[:, None, :]
        return edge[..., 0] * rel[..., 1] - edge[..., 1] * rel[..., 0]

    s_cur, s_nxt = side(cur), side(nxt)
    in_cur, in_nxt = s_cur >= 0, s_nxt >= 0
    denom = s_cur - s_nxt
    t = np.divide(s_cur, denom, out=np.zeros_like(s_cur), where=denom != 0)
    cross_pt = cur + t[..., None] * (nxt - cur)
    # each input vertex emits itself when inside, then the crossing when the edge crosses
    cand = np.stack([cur, cross_pt], axis=2).reshape(n, 2 * v, 2)
    emit = np.stack([valid & in_cur, valid & (in_cur != in_nxt)], axis=2).reshape(n, 2 * v)
    order = np.argsort(~emit, axis=1, kind="stable")
    out = np.take_along_axis(cand, order[..., None].repeat(2, -1), 1)[:, :_MAX_VERTS]
    new_count = np.minimum(emit.sum(1), _MAX_VERTS)
    return out, new_count


def rotated_intersection(rects_a: np.ndarray, rects_b: np.ndarray) -> np.ndarray:
    """(N, M) overlap areas of rectangles ``(cx, cy, length, width, angle)``."""
    ca, cb = rect_corners(rects_a), rect_corners(rects_b)
    n, m = len(ca), len(cb)
    if n == 0 or m == 0:
        return np.zeros((n, m))
    poly = np.zeros((n * m, _MAX_VERTS, 2))
    poly[:, :4] = np.repeat(ca, m, axis=0)
    count = np.full(n * m, 4)
    clip = np.tile(cb, (n, 1, 1))
    for k in range(4):
        poly, count = clip_convex(poly, count, clip[:, k], clip[:, (k + 1) % 4])
    area = np.where(count >= 3, polygon_area(poly, count), 0.0)
    return area.reshape(n, m)


def rotated_iou(rects_a: np.ndarray, rects_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) IoU of rotated rectangles; ``criterion`` 0 or 1 divides by the area of a or b instead."""
    rects_a = np.asarray(rects_a, dtype=np.float64).reshape(-1, 5)
    rects_b = np.asarray(rects_b, dtype=np.float64).reshape(-1, 5)
    inter = rotated_intersection(rects_a, rects_b)
    area_a = (rects_a[:, 2] * rects_a[:, 3])[:, None]
    area_b = (rects_b[:, 2] * rects_b[:, 3])[None, :]
    denom = {-1: area_a + area_b - inter, 0: area_a + 0 * inter, 1: area_b + 0 * inter}[criterion]
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def box3d_iou(loc_a: np.ndarray, dims_a: np.ndarray, ry_a: np.ndarray, loc_b: np.ndarray, dims_b: np.ndarray, ry_b: np.ndarray) -> np.ndarray:
    """(N, M) 3D IoU of KITTI camera boxes (bottom centre ``loc``, ``dims`` as h w l, ``ry``).

    The ground-plane overlap is the rotated overlap in the camera's x-z plane; the vertical
    overlap runs along the camera's y axis, which points down (a box spans ``[y - h, y]``).
    """
    loc_a, loc_b = np.asarray(loc_a, np.float64).reshape(-1, 3), np.asarray(loc_b, np.float64).reshape(-1, 3)
    dims_a, dims_b = np.asarray(dims_a, np.float64).reshape(-1, 3), np.asarray(dims_b, np.float64).reshape(-1, 3)
    bev_a = np.column_stack([loc_a[:, 0], loc_a[:, 2], dims_a[:, 2], dims_a[:, 1], np.asarray(ry_a).reshape(-1)])
    bev_b = np.column_stack([loc_b[:, 0], loc_b[:, 2], dims_b[:, 2], dims_b[:, 1], np.asarray(ry_b).reshape(-1)])
    inter_area = rotated_intersection(bev_a, bev_b)
    top = np.maximum((loc_a[:, 1] - dims_a[:, 0])[:, None], (loc_b[:, 1] - dims_b[:, 0])[None, :])
    bottom = np.minimum(loc_a[:, 1][:, None], loc_b[:, 1][None, :])
    inter = inter_area * np.clip(bottom - top, 0, None)
    vol_a = np.prod(dims_a, axis=1)[:, None]
    vol_b = np.prod(dims_b, axis=1)[None, :]
    union = vol_a + vol_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def image_box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) overlap of axis-aligned 2D boxes (left, top, right, bottom): IoU, or over a's (0) / b's (1) area."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    denom = {-1: area_a + area_b - inter, 0: area_a + 0 * inter, 1: area_b + 0 * inter}[criterion]
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
