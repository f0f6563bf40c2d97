"""ONNX: export a run (:mod:`.export`), quantise it to int8 (dynamic: :mod:`.quantize`; static,
calibrated on training crops from :mod:`.calibration`: :mod:`.static`) and run it with
onnxruntime (:mod:`.backend`); :mod:`.io` holds the names, metadata and file writing they share.

Importing this package imports neither onnx nor onnxruntime; the submodules import them where
they need them.
"""
