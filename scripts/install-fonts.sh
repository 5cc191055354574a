#!/usr/bin/env bash
# Make sure a font with Chinese glyphs is installed, for the digest charts (issue 16).
#
#   scripts/install-fonts.sh
#
# askdesk's charts name teams and departments, which may be Chinese; matplotlib's own font has no
# CJK glyphs. This installs Debian's small fonts-wqy-microhei (about 5 MB) when no CJK font that
# bot/analytics/fonts.py looks for is present. As root it runs apt-get; otherwise it says what to run
# and exits 1. `make venv`, `make test`, `make demo` and `.ci/run` (through make) call it.
set -euo pipefail

log() { printf 'install-fonts: %s\n' "$*" >&2; }

have_cjk_font() {
    local dir
    for dir in /usr/share/fonts /usr/local/share/fonts "$HOME/.local/share/fonts" "$HOME/.fonts" \
               /Library/Fonts /System/Library/Fonts; do
        [ -d "$dir" ] || continue
        if find "$dir" -iname 'wqy-microhei.ttc' -o -iname 'wqy-zenhei.ttc' -o -iname 'NotoSansCJK*' \
               -o -iname 'NotoSansSC-*' -o -iname 'SourceHanSansSC-*' -o -iname 'PingFang.ttc' \
               2>/dev/null | grep -q .; then
            return 0
        fi
    done
    return 1
}

if have_cjk_font; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    log "no font with Chinese glyphs found; charts with Chinese names would show empty boxes."
    log "install one as root, e.g.: sudo apt-get install fonts-wqy-microhei"
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    log "no font with Chinese glyphs found and no apt-get here; install a CJK font (e.g. WenQuanYi Micro Hei)"
    exit 1
fi
log "installing fonts-wqy-microhei (Chinese glyphs for the digest charts)"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei >/dev/null
}
have_cjk_font || { log "error: fonts-wqy-microhei installed but no font file found"; exit 1; }
