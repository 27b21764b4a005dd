"""Figures and markdown reports, drawn from saved tables only (common.py holds what they share)."""
