"""Finding widgets by key and reading what an AppTest page shows."""

from __future__ import annotations

import io
from pathlib import PurePosixPath
from typing import Any

from PIL import Image

# The app's pages (st.Page files, relative to app.py), by the title the navigation shows.
PAGES = {
    "Generate": "views/generate.py",
    "Explore": "views/explore.py",
    "Inspect": "views/inspect_model.py",
    "Training": "views/training.py",
}


def widget(at: Any, key: str) -> Any:
    """The widget with this key, wherever it is on the page (main area or sidebar)."""
    found = [node for node in (*at.main, *at.sidebar) if getattr(node, "key", None) == key]
    assert found, f"no widget with key {key!r} on the page"
    return found[0]


def show(at: Any, page: str) -> Any:
    """Go to the page with this title, as its navigation link would, and rerun."""
    return at.switch_page(PAGES[page]).run()


def assert_clean(at: Any) -> None:
    """No traceback and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def one_error(at: Any) -> str:
    """The page shows exactly one error box, of one line, and no traceback."""
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert "\n" not in message and "Traceback" not in message
    return message


def image_urls(at: Any) -> list[str]:
    return [url for image in at.get("image") for url in image.value]


def payload(media: dict[str, Any], url: str) -> Any:
    """What was served behind an image or download URL (/mock/media/<id>.<ext>):
    (data, mimetype, filename)."""
    return media[PurePosixPath(url).stem]


def download(at: Any, media: dict[str, Any], key: str) -> Any:
    """(data, mimetype, filename) of the download button with this key."""
    return payload(media, widget(at, key).proto.url)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
