"""Fault-injection tests: each file injects one fault and ends with the census."""
