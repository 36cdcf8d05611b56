"""Intersection-over-union of rotated rectangles (bird's eye view) and of 3D boxes.

Two conventions, one per frame, both KITTI's:

- lidar BEV rectangles ``(x, y, length, width, heading)``: the heading turns counter-clockwise
  about the lidar's up axis (z), so a corner offset ``(dx, dy)`` lands at
  ``(cos h dx - sin h dy, sin h dx + cos h dy)`` (:func:`rect_corners`, used by NMS, anchors,
  augmentation and the scene generator);
- camera boxes (KITTI labels): ``rotation_y`` turns about the camera's y axis, which points
  down, so in the ground plane ``(x, z)`` an offset ``(dx, dz)`` lands at
  ``(cos ry dx + sin ry dz, -sin ry dx + cos ry dz)``, the devkit's ``toPolygon`` and the
  ``R_y`` of its ``computeBox3D`` (:func:`camera_bev_corners`, used by the evaluation).

A lidar box and the camera box it converts to (:mod:`.boxes`) have the same corners.
The overlap of two convex quadrilaterals is found by clipping one against the four edges of
the other (Sutherland-Hodgman), for many pairs at once; its area follows from the shoelace formula.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rect_corners", "camera_bev_corners", "polygon_area", "clip_convex", "quad_intersection", "rotated_intersection",
           "rotated_iou", "camera_bev_overlap", "box3d_overlap", "box3d_iou", "image_box_iou"]

_MAX_VERTS = 8  # a rectangle clipped by four half-planes has at most eight vertices
_UNIT = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])  # counter-clockwise


def rect_corners(rects: np.ndarray) -> np.ndarray:
    """(N, 4, 2) counter-clockwise corners of lidar BEV rectangles ``(x, y, length, width, heading)``."""
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 5)
    local = _UNIT[None] * rects[:, None, 2:4]
    c, s = np.cos(rects[:, 4])[:, None], np.sin(rects[:, 4])[:, None]
    x = local[..., 0] * c - local[..., 1] * s + rects[:, None, 0]
    y = local[..., 0] * s + local[..., 1] * c + rects[:, None, 1]
    return np.stack([x, y], axis=-1)


def camera_bev_corners(x: np.ndarray, z: np.ndarray, length: np.ndarray, width: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """(N, 4, 2) ground-plane corners ``(x, z)`` of KITTI camera boxes, as the devkit's ``toPolygon``.

    The length runs along the box's own x axis, the width along its z axis; the corners are
    counter-clockwise in the ``(x, z)`` plane whatever the signs of the sizes.
    """
    x, z, length, width, ry = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (x, z, length, width, ry))
    local = _UNIT[None] * np.stack([length, width], axis=-1)[:, None, :]
    c, s = np.cos(ry)[:, None], np.sin(ry)[:, None]
    cx = c * local[..., 0] + s * local[..., 1] + x[:, None]
    cz = -s * local[..., 0] + c * local[..., 1] + z[:, None]
    return _counter_clockwise(np.stack([cx, cz], axis=-1))


def _counter_clockwise(quads: np.ndarray) -> np.ndarray:
    """The quadrilaterals (N, 4, 2) with clockwise ones reversed (a size of negative sign flips the order)."""
    x, y = quads[..., 0], quads[..., 1]
    signed = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1)
    flip = signed < 0
    if flip.any():
        quads = quads.copy()
        quads[flip] = quads[flip][:, ::-1]
    return quads


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


def quad_intersection(quads_a: np.ndarray, quads_b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """(P,) overlap areas of paired counter-clockwise quadrilaterals (P, 4, 2): ``a[p]`` with ``b[p]``.

    Pairs whose bounding boxes do not meet are 0 without clipping; the rest are clipped in chunks.
    """
    quads_a, quads_b = np.asarray(quads_a, np.float64), np.asarray(quads_b, np.float64)
    area = np.zeros(len(quads_a))
    if len(quads_a) == 0:
        return area
    lo_a, hi_a, lo_b, hi_b = quads_a.min(1), quads_a.max(1), quads_b.min(1), quads_b.max(1)
    near = np.flatnonzero(np.all((lo_a < hi_b) & (lo_b < hi_a), axis=1))
    for start in range(0, len(near), chunk):
        idx = near[start:start + chunk]
        poly = np.zeros((len(idx), _MAX_VERTS, 2))
        poly[:, :4] = quads_a[idx]
        count = np.full(len(idx), 4)
        clip = quads_b[idx]
        for k in range(4):
            poly, count = clip_convex(poly, count, clip[:, k], clip[:, (k + 1) % 4])
        area[idx] = np.where(count >= 3, polygon_area(poly, count), 0.0)
    return area


def _all_pairs(quads_a: np.ndarray, quads_b: np.ndarray) -> np.ndarray:
    """(N, M) overlap areas of every quadrilateral of ``a`` with every one of ``b``."""
    n, m = len(quads_a), len(quads_b)
    if n == 0 or m == 0:
        return np.zeros((n, m))
    return quad_intersection(np.repeat(quads_a, m, axis=0), np.tile(quads_b, (n, 1, 1))).reshape(n, m)


def rotated_intersection(rects_a: np.ndarray, rects_b: np.ndarray) -> np.ndarray:
    """(N, M) overlap areas of lidar BEV rectangles ``(x, y, length, width, heading)``."""
    return _all_pairs(rect_corners(rects_a), rect_corners(rects_b))


def rotated_iou(rects_a: np.ndarray, rects_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) IoU of lidar BEV rectangles; ``criterion`` 0 or 1 divides by the area of a or b instead."""
    rects_a = np.asarray(rects_a, dtype=np.float64).reshape(-1, 5)
    rects_b = np.asarray(rects_b, dtype=np.float64).reshape(-1, 5)
    inter = rotated_intersection(rects_a, rects_b)
    return _ratio(inter, (rects_a[:, 2] * rects_a[:, 3])[:, None], (rects_b[:, 2] * rects_b[:, 3])[None, :], criterion)


def _ratio(inter: np.ndarray, size_a: np.ndarray, size_b: np.ndarray, criterion: int) -> np.ndarray:
    """IoU (-1), or the overlap over a's (0) or b's (1) size; 0 where the denominator is not positive."""
    if criterion not in (-1, 0, 1):
        raise ValueError(f"criterion must be -1 (union), 0 (a) or 1 (b), got {criterion}")
    denom = {-1: size_a + size_b - inter, 0: size_a + 0 * inter, 1: size_b + 0 * inter}[criterion]
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def _camera_quads(loc: np.ndarray, dims: np.ndarray, ry: np.ndarray) -> np.ndarray:
    loc, dims = np.asarray(loc, np.float64).reshape(-1, 3), np.asarray(dims, np.float64).reshape(-1, 3)
    return camera_bev_corners(loc[:, 0], loc[:, 2], dims[:, 2], dims[:, 1], np.asarray(ry, np.float64).reshape(-1))


def camera_bev_overlap(loc_a: np.ndarray, dims_a: np.ndarray, ry_a: np.ndarray, loc_b: np.ndarray, dims_b: np.ndarray,
                       ry_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) ground-plane overlap of KITTI camera boxes (``loc``, ``dims`` as h w l, ``ry``): the devkit's ``groundBoxOverlap``."""
    dims_a, dims_b = np.asarray(dims_a, np.float64).reshape(-1, 3), np.asarray(dims_b, np.float64).reshape(-1, 3)
    inter = _all_pairs(_camera_quads(loc_a, dims_a, ry_a), _camera_quads(loc_b, dims_b, ry_b))
    return _ratio(inter, np.abs(dims_a[:, 2] * dims_a[:, 1])[:, None], np.abs(dims_b[:, 2] * dims_b[:, 1])[None, :], criterion)


def box3d_overlap(loc_a: np.ndarray, dims_a: np.ndarray, ry_a: np.ndarray, loc_b: np.ndarray, dims_b: np.ndarray,
                  ry_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) 3D overlap of KITTI camera boxes (bottom centre ``loc``, ``dims`` as h w l, ``ry``): the devkit's ``box3DOverlap``.

    The ground-plane overlap is the one of :func:`camera_bev_overlap`; the vertical overlap runs
    along the camera's y axis, which points down (a box spans ``[y - h, y]``).
    """
    loc_a, loc_b = np.asarray(loc_a, np.float64).reshape(-1, 3), np.asarray(loc_b, np.float64).reshape(-1, 3)
    dims_a, dims_b = np.asarray(dims_a, np.float64).reshape(-1, 3), np.asarray(dims_b, np.float64).reshape(-1, 3)
    inter_area = _all_pairs(_camera_quads(loc_a, dims_a, ry_a), _camera_quads(loc_b, dims_b, ry_b))
    top = np.maximum((loc_a[:, 1] - dims_a[:, 0])[:, None], (loc_b[:, 1] - dims_b[:, 0])[None, :])
    bottom = np.minimum(loc_a[:, 1][:, None], loc_b[:, 1][None, :])
    inter = inter_area * np.clip(bottom - top, 0, None)
    return _ratio(inter, np.prod(dims_a, axis=1)[:, None], np.prod(dims_b, axis=1)[None, :], criterion)


def box3d_iou(loc_a: np.ndarray, dims_a: np.ndarray, ry_a: np.ndarray, loc_b: np.ndarray, dims_b: np.ndarray, ry_b: np.ndarray) -> np.ndarray:
    """(N, M) 3D IoU of KITTI camera boxes (:func:`box3d_overlap` over the union)."""
    return box3d_overlap(loc_a, dims_a, ry_a, loc_b, dims_b, ry_b, criterion=-1)


def image_box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray, criterion: int = -1) -> np.ndarray:
    """(N, M) overlap of axis-aligned 2D boxes (left, top, right, bottom): IoU, or over a's (0) / b's (1) area."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    return _ratio(inter, ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None], ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :], criterion)
