"""Test support kept out of the runtime paths: the parity log, faults on cue, and tiny datasets
in the real formats."""
