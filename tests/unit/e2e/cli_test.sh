#!/bin/sh
# cli_test.sh - black-box tests of the bgremover executable: exit statuses,
# messages, output naming, stdin/stdout, formats (by their magic bytes).
#
#   sh cli_test.sh path/to/bgremover
#
# Usage errors need no model. The runs that process photos need the medium
# model installed where `bgremover remove` looks for it (`make test` installs
# it); without it they fail, and say so. The last line is "N passed, N failed".
set -u

BIN=$1
PHOTOS=/usr/lib/python3/dist-packages/skimage/data
T=$(mktemp -d /tmp/bgr-cli-test.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "[  OK  ] $1" >&2; }
bad() { fail=$((fail + 1)); echo "[ FAIL ] $1: $2" >&2; }

# expect NAME STATUS PATTERN CMD...: runs CMD, wants exit STATUS and, unless
# PATTERN is empty, PATTERN (grep -E) in its stderr.
expect() {
    name=$1 want=$2 pat=$3
    shift 3
    "$@" >"$T/out" 2>"$T/err"
    got=$?
    if [ "$got" != "$want" ]; then
        bad "$name" "exit $got, expected $want; stderr: $(head -c 400 "$T/err")"
    elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$T/err"; then
        bad "$name" "stderr lacks /$pat/: $(head -c 400 "$T/err")"
    else
        ok "$name"
    fi
}

# magic NAME FILE HEX: the file starts with these bytes (hex, no spaces).
magic() {
    nbytes=$(($(printf %s "$3" | wc -c) / 2))
    got=$(od -An -tx1 -N"$nbytes" "$2" 2>/dev/null | tr -d ' \n')
    if [ "$got" = "$3" ]; then ok "$1"; else bad "$1" "starts with '$got', expected '$3'"; fi
}

# png_color_type FILE: the IHDR colour type byte (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA).
png_color_type() { od -An -tu1 -j25 -N1 "$1" 2>/dev/null | tr -d ' '; }

PNG=89504e470d0a1a0a
JPEG=ffd8ff

# ---- usage errors: exit 2, the message names the option ------------------
expect "no command" 2 "Usage" "$BIN"
expect "unknown command" 2 "unknown command 'frobnicate'" "$BIN" frobnicate
expect "help" 0 "" "$BIN" --help
expect "help remove" 0 "" "$BIN" help remove
grep -q -- "--max-resolution" "$T/out" && ok "remove --help lists options" ||
    bad "remove --help lists options" "no --max-resolution in: $(head -c 200 "$T/out")"
expect "version" 0 "" "$BIN" version
grep -q "^bgremover " "$T/out" && ok "version prints it" || bad "version prints it" "$(cat "$T/out")"
expect "remove without input" 2 "no input" "$BIN" remove
expect "unknown long option" 2 "unknown option --frobnicate" "$BIN" remove --frobnicate x.png
expect "unknown short option" 2 "unknown option -Z" "$BIN" remove -Z x.png
expect "missing option value" 2 "needs a value" "$BIN" remove x.png --format
expect "bad --format" 2 "--format.*png, webp or jpeg" "$BIN" remove --format gif x.png
expect "bad --quality" 2 "--quality" "$BIN" remove --quality 0 x.png
expect "bad --quality text" 2 "--quality" "$BIN" remove --quality abc x.png
expect "bad --bg-color" 2 "--bg-color" "$BIN" remove --bg-color '#12345' x.png
expect "bad --max-resolution" 2 "--max-resolution" "$BIN" remove --max-resolution 4k x.png
expect "bad --backend" 2 "--backend.*dnnl or ref" "$BIN" remove --backend cuda x.png
expect "bad --threads" 2 "--threads" "$BIN" remove -j 0 x.png
expect "bad output extension" 2 "-o out.gif" "$BIN" remove x.png -o out.gif
expect "crop margin without crop" 2 "--crop-margin applies only with --crop" \
    "$BIN" remove --crop-margin 10 x.png
expect "json to stdout" 2 "--json.*-o" "$BIN" remove --json x.png -o -
expect "json with stdin and no -o" 2 "--json" "$BIN" remove --json -
expect "remove --help" 0 "" "$BIN" remove --help
grep -q "HEIF/AVIF" "$T/out" && grep -q "SVG, PDF" "$T/out" && ok "remove --help names the formats" ||
    bad "remove --help names the formats" "$(grep -i jpeg "$T/out")"
grep -q "auto (default)" "$T/out" && ok "remove --help: refine auto is the default" ||
    bad "remove --help: refine auto is the default" "$(grep -A2 -- --refine "$T/out")"
expect "eval --help" 0 "" "$BIN" eval --help
grep -q "int8" "$T/out" && ok "eval --help lists int8" || bad "eval --help lists int8" "$(grep precision "$T/out")"
expect "two inputs to stdout" 2 "stdout" "$BIN" remove a.png b.png -o -
expect "empty -o" 2 "-o: empty" "$BIN" remove x.png -o ""
expect "stdin twice" 2 "stdin" "$BIN" remove - - -o "$T/d"
expect "bad --refine" 2 "--refine.*none, fast or full" "$BIN" remove --refine best x.png
expect "bad --decontaminate" 2 "--decontaminate.*true or false" \
    "$BIN" remove --decontaminate maybe x.png
expect "bad --output-type" 2 "--output-type.*cutout or mask" "$BIN" remove --output-type alpha x.png
expect "bad --crop-margin" 2 "--crop-margin" "$BIN" remove --crop --crop-margin 101% x.png
expect "eval needs --gt" 2 "--gt DIR is required" "$BIN" eval
expect "eval on a missing folder" 2 "--gt $T/none: no such folder" "$BIN" eval --gt "$T/none"
mkdir -p "$T/emptygt"
expect "eval without ground truth" 2 "no ground truth" "$BIN" eval --gt "$T/emptygt"
expect "eval bad --refine list" 2 "--refine" "$BIN" eval --gt "$T/emptygt" --refine fast,best
expect "unknown model name" 2 "unknown model 'huge'" "$BIN" remove --model huge x.png

# ---- models: a directory with nothing installed ----------------------------
expect "models list (empty dir)" 0 "" "$BIN" models list --model-dir "$T/none"
grep -q "missing" "$T/out" && ok "models list says missing" || bad "models list says missing" "$(cat "$T/out")"
expect "models verify (empty dir)" 1 "" "$BIN" models verify --model-dir "$T/none"
expect "models path not installed" 1 "bgremover models install medium" \
    "$BIN" models path medium --model-dir "$T/none"
expect "models install unknown" 2 "unknown model 'large'" "$BIN" models install large
expect "models unknown subcommand" 2 "unknown subcommand" "$BIN" models frob
expect "remove without installed model" 1 "models install" \
    "$BIN" remove --model-dir "$T/none" "$PHOTOS/chelsea.png" -o "$T/x.png"

# ---- processing (needs the model) -----------------------------------------
if ! "$BIN" models path medium >/dev/null 2>"$T/err"; then
    bad "model installed" "$(cat "$T/err") - run 'build/bgremover models install' (make test does)"
else
    # several inputs into a new directory, as masks: DIR/NAME.png, grayscale
    expect "two inputs into a directory" 0 "" \
        "$BIN" remove "$PHOTOS/chelsea.png" "$PHOTOS/coffee.png" -o "$T/masks" --mask
    for n in chelsea coffee; do
        magic "mask $n.png is PNG" "$T/masks/$n.png" $PNG
        [ "$(png_color_type "$T/masks/$n.png")" = 0 ] && ok "mask $n.png is grayscale" ||
            bad "mask $n.png is grayscale" "colour type $(png_color_type "$T/masks/$n.png")"
    done

    # refine=full (four model runs, merged, then the matting solve): a valid
    # grayscale mask of the same photo, and not the fast refinement's
    expect "refine full" 0 "" \
        "$BIN" remove "$PHOTOS/chelsea.png" -o "$T/full.png" --mask --refine full
    magic "refine full mask is PNG" "$T/full.png" $PNG
    [ "$(png_color_type "$T/full.png")" = 0 ] && ok "refine full mask is grayscale" ||
        bad "refine full mask is grayscale" "colour type $(png_color_type "$T/full.png")"
    if cmp -s "$T/full.png" "$T/masks/chelsea.png"; then
        bad "refine full differs from fast" "identical masks"
    else
        ok "refine full differs from fast"
    fi

    # stdin to stdout, webp: RIFF....WEBP
    "$BIN" remove - --format webp <"$PHOTOS/chelsea.png" >"$T/o.webp" 2>"$T/err" &&
        ok "stdin to stdout" || bad "stdin to stdout" "$(cat "$T/err")"
    magic "webp RIFF" "$T/o.webp" 52494646
    [ "$(od -An -c -j8 -N4 "$T/o.webp" | tr -d ' ')" = WEBP ] && ok "webp tag" ||
        bad "webp tag" "$(od -An -c -j8 -N4 "$T/o.webp")"

    # one input, -o FILE.jpg picks jpeg; -v prints the stages
    expect "jpeg by extension, verbose" 0 "inference .* ms" \
        "$BIN" remove "$PHOTOS/chelsea.png" -o "$T/o.jpg" -v --bg-color '#336699' -q 80
    magic "jpeg magic" "$T/o.jpg" $JPEG
    grep -q "precision" "$T/err" && ok "verbose prints precision" || bad "verbose prints precision" "$(cat "$T/err")"

    # a missing file and a non-image among good ones: exit 1, each named,
    # the good one still written (default PNG RGBA, NAME.png in the directory)
    printf 'not an image' >"$T/garbage.png"
    cp "$PHOTOS/chelsea.png" "$T/cat.png"
    expect "failures are reported, others run" 1 "nothere.png" \
        "$BIN" remove "$T/nothere.png" "$T/garbage.png" "$T/cat.png" -o "$T/mixed"
    grep -q "garbage.png" "$T/err" && ok "bad image named" || bad "bad image named" "$(cat "$T/err")"
    magic "good input still written" "$T/mixed/cat.png" $PNG
    [ "$(png_color_type "$T/mixed/cat.png")" = 6 ] && ok "cutout is RGBA" ||
        bad "cutout is RGBA" "colour type $(png_color_type "$T/mixed/cat.png")"
    [ ! -e "$T/mixed/garbage.png" ] && ok "no output for a failed input" ||
        bad "no output for a failed input" "found $T/mixed/garbage.png"

    # --output-type mask is --mask; refine none gives the raw matte, which
    # differs from the refined default
    expect "output-type mask" 0 "" "$BIN" remove "$PHOTOS/chelsea.png" --output-type mask \
        -o "$T/ot.png"
    cmp -s "$T/ot.png" "$T/masks/chelsea.png" && ok "output-type mask = --mask" ||
        bad "output-type mask = --mask" "files differ"
    expect "refine none" 0 "" "$BIN" remove "$PHOTOS/chelsea.png" --mask --refine none \
        --decontaminate false -o "$T/raw.png"
    cmp -s "$T/raw.png" "$T/ot.png" && bad "refine changes the matte" "identical to refine none" ||
        ok "refine changes the matte"

    # crop margin: 10% more on each side than --crop alone (or the frame)
    png_w() { od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}'; }
    expect "crop" 0 "" "$BIN" remove "$PHOTOS/chelsea.png" --crop -o "$T/c0.png"
    expect "crop margin" 0 "" "$BIN" remove "$PHOTOS/chelsea.png" --crop --crop-margin 10% \
        -o "$T/c10.png"
    w0=$(png_w "$T/c0.png") w10=$(png_w "$T/c10.png")
    [ "$w10" -gt "$w0" ] && [ "$w10" -le "$(png_w "$T/raw.png")" ] && ok "crop margin widens" ||
        bad "crop margin widens" "width $w0 -> $w10"

    # eval on a folder whose ground truth is our own raw matte: perfect
    # scores when it runs the same pipeline, and when it reads the masks back
    mkdir -p "$T/gt/images" "$T/gt/masks"
    cp "$PHOTOS/chelsea.png" "$T/gt/images/cat.png"
    cp "$T/raw.png" "$T/gt/masks/cat.png"
    expect "eval raw vs itself" 0 "" "$BIN" eval --gt "$T/gt" --refine none --decontaminate false
    grep -q "mean_mae=0.000000 .*mean_iou=1.0000 mean_bf=1.0000 mean_grad=0.000" "$T/out" &&
        ok "eval: same pipeline scores perfectly" ||
        bad "eval: same pipeline scores perfectly" "$(tail -1 "$T/out")"
    expect "eval --pred" 0 "" "$BIN" eval --gt "$T/gt" --pred "$T/gt/masks"
    grep -q "mean_mae=0.000000 .*mean_comp=0.00000" "$T/out" && ok "eval --pred scores itself" ||
        bad "eval --pred scores itself" "$(tail -1 "$T/out")"
    expect "eval refined" 0 "" "$BIN" eval --gt "$T/gt"
    grep -q "mean_mae=0.000000" "$T/out" && bad "eval refined differs" "$(tail -1 "$T/out")" ||
        ok "eval refined differs"

    # a mask is always PNG (as in the API): --format is ignored with a note
    # naming the flag that was given
    expect "mask ignores --format" 0 "--mask writes a grayscale PNG; --format webp is ignored" \
        "$BIN" remove "$PHOTOS/chelsea.png" --mask -f webp -o "$T/mw.png"
    magic "mask with -f webp is PNG" "$T/mw.png" $PNG
    expect "output-type mask ignores --format" 0 "--output-type mask writes a grayscale PNG" \
        "$BIN" remove "$PHOTOS/chelsea.png" --output-type mask -f webp -o "$T/mw2.png"
    grep -q -- "--mask" "$T/err" && bad "no --mask in the note" "$(cat "$T/err")" ||
        ok "no --mask in the note"

    # --json: one valid object per input on stdout, nothing else there;
    # a failed input gives an object with error; exit status as without it
    expect "json" 1 "" "$BIN" remove "$T/cat.png" "$T/garbage.png" -o "$T/js" --json --quiet
    python3 - "$T/out" "$T/js/cat.png" <<'PY' && ok "json lines" || bad "json lines" "$(cat "$T/out")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
a, b = (json.loads(l) for l in lines)
assert a["output"] == sys.argv[2] and a["width"] > 0 and a["height"] > 0, a
s = a["subject"]
assert 0 <= s["x"] and s["x"] + s["width"] <= a["width"] and s["y"] + s["height"] <= a["height"], a
assert 0 <= a["confidence"] <= 1 and a["refine"] in ("fast", "full"), a
assert set(a["timings_ms"]) >= {"decode", "inference", "refine", "encode", "total"}, a
assert "error" not in a and b["error"]["code"] == "UNSUPPORTED_FORMAT" and b["output"] is None, b
PY
    [ ! -s "$T/err" ] || grep -qv "^\[" "$T/err" && ok "quiet: no progress" ||
        bad "quiet: no progress" "$(cat "$T/err")"

    # progress with stderr redirected: one line per file, [i/n]
    expect "progress lines" 0 "^\[2/2\] .*coffee.png -> " \
        "$BIN" remove "$PHOTOS/chelsea.png" "$PHOTOS/coffee.png" -o "$T/pg"
    grep -q "^\[1/2\] .*chelsea.png -> " "$T/err" && ok "progress line per file" ||
        bad "progress line per file" "$(cat "$T/err")"
    expect "quiet" 0 "" "$BIN" remove "$PHOTOS/chelsea.png" "$PHOTOS/coffee.png" -o "$T/pg" --quiet
    [ ! -s "$T/err" ] && ok "quiet prints nothing" || bad "quiet prints nothing" "$(cat "$T/err")"

    # eval: the model path named once when int8 cannot load (or it loads)
    "$BIN" eval --gt "$T/gt" --precision int8 >/dev/null 2>"$T/err"
    n=$(grep -o "medium.onnx" "$T/err" | wc -l)
    [ "$n" -le 1 ] && ok "eval int8: model path at most once" ||
        bad "eval int8: model path at most once" "$(cat "$T/err")"

    # eval with a list of modes: a table each and a comparison
    expect "eval fast,auto" 0 "" "$BIN" eval --gt "$T/gt" --refine fast,auto
    grep -q "^auto " "$T/out" && grep -q "spearman(confidence, sad)" "$T/out" &&
        ok "eval compares modes" || bad "eval compares modes" "$(tail -5 "$T/out")"

    # default name next to the input
    expect "default output name" 0 "" "$BIN" remove "$T/cat.png" --format webp
    magic "NAME.out.webp written" "$T/cat.out.webp" 52494646
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
