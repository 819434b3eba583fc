"""Catalogues of faults the harness must meet cleanly, each case runnable on its own:
bad_inputs.py (command lines refused in one line before anything runs), and the tiny
datasets they break (tiny_data.py)."""
