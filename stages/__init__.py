"""Thin DVC stage scripts: `python -m stages.<name>` reads params, calls lthlib, writes outputs.

Run as modules from the repository root, so they import this checkout's lthlib.
"""
