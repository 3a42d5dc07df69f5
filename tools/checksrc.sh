#!/bin/sh
# House check: bans libc calls that have bitten C servers before. snprintf,
# memcpy with a checked length, strtol/strtoll with end-pointer checks are the
# replacements. Exits non-zero listing each offending line.
cd "$(dirname "$0")/.." || exit 2
bad=$(grep -nE '(^|[^a-z_])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' \
      -r src tools --include='*.c' --include='*.h' | grep -v 'checksrc: allow' || true)
if [ -n "$bad" ]; then
    echo "checksrc: banned calls:"
    echo "$bad"
    exit 1
fi
echo "checksrc: ok"
