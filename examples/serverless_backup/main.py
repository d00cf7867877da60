"""Google Cloud Functions loads ``main.py``: the entry point ``on_alarm`` lives in handler.py."""

from handler import on_alarm

__all__ = ["on_alarm"]
