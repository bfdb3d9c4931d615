"""The v2 pipeline: accumulator, reader, the one writer, twins, reconciler, watcher, and the
wiring of them (v2). Knows change sources only through their protocol, never a concrete one.
"""
