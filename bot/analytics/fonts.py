"""Fonts for charts: which installed font has Chinese glyphs (no matplotlib import here).

Chart labels (team and department names, week labels, titles) may be Chinese. DejaVu Sans, matplotlib's
default, has no CJK glyphs, so a CJK font is looked up by its file name in the usual font folders and
handed to matplotlib explicitly (`charts.py` adds the file to its font manager, so it works even when
matplotlib's font cache was built before the font was installed). `make venv`, `make test` and `.ci/run`
install Debian's `fonts-wqy-microhei` when it is missing (scripts/install-fonts.sh).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

#: Font files with Simplified Chinese coverage, preferred first.
CJK_FONT_FILES = (
    "wqy-microhei.ttc", "wqy-zenhei.ttc", "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf", "NotoSansSC-Regular.ttf", "SourceHanSansSC-Regular.otf", "msyh.ttc", "simhei.ttf",
    "PingFang.ttc", "Hiragino Sans GB.ttc",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "/Library/Fonts",
             "/System/Library/Fonts", "C:/Windows/Fonts")


@cache
def cjk_font_path() -> Path | None:
    """The first installed font file with Chinese glyphs, or None."""
    wanted = {name.lower(): rank for rank, name in enumerate(CJK_FONT_FILES)}
    found: list[tuple[int, Path]] = []
    for folder in FONT_DIRS:
        root = Path(os.path.expanduser(folder))
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            found += [(wanted[f.lower()], Path(dirpath) / f) for f in files if f.lower() in wanted]
    return min(found)[1] if found else None


def warn_if_no_cjk_font() -> bool:
    """Log one warning when no font with Chinese glyphs is installed; True when one is."""
    if cjk_font_path() is not None:
        return True
    log.warning("no font with Chinese glyphs is installed: Chinese text in digest charts will show as empty "
                "boxes. Install one, e.g. 'apt-get install fonts-wqy-microhei' (scripts/install-fonts.sh).")
    return False
