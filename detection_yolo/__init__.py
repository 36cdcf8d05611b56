"""SLR and ADMM pruning of Ultralytics detection models (YOLOv3 for Table 2; YOLOv8, YOLO11, ...)
inside Ultralytics' own trainer.

Importing this package does not import Ultralytics: call
:func:`detection_yolo.ultralytics_env.prepare_ultralytics` first (offline, local config folder),
then import :mod:`detection_yolo.trainer` and pass its trainers to ``YOLO(...).train(trainer=...)``.
"""
