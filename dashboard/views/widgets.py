"""Widgets the views share, drawn the same way everywhere."""

from __future__ import annotations

from typing import Any

import streamlit as st

DOWNLOAD_ICON = ":material/download:"
NEW_SEED_ICON = ":material/casino:"


def download(
    label: str, data: bytes, file_name: str, key: str, mime: str = "image/png", where: Any = st
) -> None:
    """A download button that does not rerun the page: the images stay as they are."""
    where.download_button(
        label, data, file_name=file_name, mime=mime, key=key, icon=DOWNLOAD_ICON, on_click="ignore"
    )
