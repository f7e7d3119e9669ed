"""Exporters: turn a trained MoTE model into serving artefacts (installed as `mote_rag.exporters`).

`onnx_graphs` writes one ONNX graph per task path with pooling and normalisation inside the graph.
"""
