"""Test support kept out of the runtime paths: the parity log, faults on cue, the bad-input catalogue and tiny datasets in the real formats."""
