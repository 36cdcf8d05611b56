"""PointPillars on KITTI 3D object detection, pruned with SLR and ADMM (the paper's Table 3).

The detector follows the architecture and settings of OpenPCDet's ``pointpillar.yaml``; the
evaluation follows the official KITTI protocol (2D, BEV and 3D AP; easy / moderate / hard;
R11 and R40).
"""
CLASS_NAMES = ("Car", "Pedestrian", "Cyclist")
