"""SLR and ADMM pruning of Ultralytics YOLOv3 models inside Ultralytics' own trainer (Table 2).

Importing this package does not import Ultralytics: call
:func:`detection_yolo.ultralytics_env.prepare_ultralytics` first (offline, local config folder),
then import :mod:`detection_yolo.trainer`.
"""
