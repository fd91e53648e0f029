"""Worker scripts of ``benchmarks/bench_peers.py``: one adapter module per TT library.

``worker.py`` is started once per library, in its own process, by ``bench_peers.py``; it
imports the library's adapter (``lib_<name>.py``), times the requested cases on the inputs
the parent saved, and writes timings and results back.  Nothing here is imported by the
``tensortrain`` package or its tests.
"""
