#!/bin/sh
# admin_test.sh - black-box tests of the admin commands (accounts, keys),
# `version` and the start-up of `serve`: exit statuses, messages, list
# formats, and that a mistyped --data-dir creates nothing.
#
#   sh admin_test.sh path/to/bgremover
#
# Every serve that should refuse to start runs under `timeout`, so a
# regression fails instead of serving for ever. The serve checks need the
# medium model installed (`make test` installs
# it; serve resolves the model before it opens the store); without it they
# fail and say so. The last line is "N passed, N failed".
set -u

BIN=$1
T=$(mktemp -d /tmp/bgr-admin-test.XXXXXX)
SERVE_PID=
cleanup() {
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "[  OK  ] $1" >&2; }
bad() { fail=$((fail + 1)); echo "[ FAIL ] $1: $2" >&2; }

# expect NAME STATUS PATTERN CMD...: runs CMD (stdin from /dev/null), wants
# exit STATUS and, unless PATTERN is empty, PATTERN (grep -E) in its stderr.
expect() {
    name=$1 want=$2 pat=$3
    shift 3
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    if [ "$got" != "$want" ]; then
        bad "$name" "exit $got, expected $want; stderr: $(head -c 400 "$T/err")"
    elif [ -n "$pat" ] && ! grep -Eq -- "$pat" "$T/err"; then
        bad "$name" "stderr lacks /$pat/: $(head -c 400 "$T/err")"
    else
        ok "$name"
    fi
}

# check NAME CONDITION-COMMAND...: passes if the command succeeds.
check() {
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name" "$(head -c 300 "$T/out")"; fi
}

out_line() { sed -n "${1}p" "$T/out"; }
tab() { printf '\t'; }

# ---- a mistyped --data-dir: every command but `accounts create` refuses it
TYPO="$T/typo/data"
NOSTORE="no bgremover store in $TYPO"
expect "accounts list, no store" 1 "$NOSTORE" "$BIN" accounts list --data-dir "$TYPO"
expect "accounts show, no store" 1 "$NOSTORE" "$BIN" accounts show usr_x --data-dir "$TYPO"
expect "accounts set-plan, no store" 1 "$NOSTORE" \
    "$BIN" accounts set-plan usr_x pro --data-dir "$TYPO"
expect "accounts webhook-secret, no store" 1 "$NOSTORE" \
    "$BIN" accounts webhook-secret usr_x --data-dir "$TYPO"
expect "accounts credits, no store" 1 "$NOSTORE" "$BIN" accounts credits usr_x --data-dir "$TYPO"
expect "accounts delete, no store" 1 "$NOSTORE" \
    "$BIN" accounts delete usr_x --yes --data-dir "$TYPO"
expect "keys list, no store" 1 "$NOSTORE" "$BIN" keys list --account usr_x --data-dir "$TYPO"
expect "keys create, no store" 1 "$NOSTORE" "$BIN" keys create --account usr_x --data-dir "$TYPO"
expect "keys revoke, no store" 1 "$NOSTORE" "$BIN" keys revoke bgr_live_abcdefgh --data-dir "$TYPO"
BGR_DATA_DIR="$TYPO" expect "BGR_DATA_DIR without a store" 1 "$NOSTORE" "$BIN" accounts list
check "nothing was created" test ! -e "$T/typo"
expect "create with a bad plan" 2 "--plan: 'gold'" \
    "$BIN" accounts create --email a@example.com --plan gold --data-dir "$TYPO"
check "a bad plan creates nothing" test ! -e "$T/typo"

# ---- the first create makes the store, and says so ---------------------------
D="$T/data"
expect "first create" 0 "created a new bgremover store in $D" \
    "$BIN" accounts create --email '  Ann@Example.com ' --plan pro --data-dir "$D"
ANN=$(out_line 1)
check "create prints the id" test "${ANN#usr_}" != "$ANN"
expect "second create" 0 "" "$BIN" accounts create --email bob@example.com --plan free \
    --data-dir "$D"
BOB=$(out_line 1)
check "second create makes no new store" sh -c "! grep -q 'new bgremover store' '$T/err'"

# ---- e-mails are unique (without case and surrounding spaces) ----------------
expect "duplicate e-mail" 1 "ann@example.com.*exists already: $ANN|Ann@Example.com exists already: $ANN" \
    "$BIN" accounts create --email ' ann@EXAMPLE.com' --plan free --data-dir "$D"
expect "not an e-mail" 2 "not an email address" \
    "$BIN" accounts create --email nobody --plan free --data-dir "$D"

# ---- lists: a header row, tab-separated columns; --no-header -------------------
expect "accounts list" 0 "" "$BIN" accounts list --data-dir "$D"
check "accounts list header" test "$(out_line 1)" = "ID$(tab)PLAN$(tab)CREATED$(tab)EMAIL"
check "accounts list rows" test "$(wc -l <"$T/out")" -eq 3
check "accounts list columns" test "$(awk -F'\t' 'NR == 2 {print $1 "|" $2 "|" $4}' "$T/out")" \
    = "$ANN|pro|Ann@Example.com"
expect "accounts list --no-header" 0 "" "$BIN" accounts list --no-header --data-dir "$D"
check "no header row" test "$(cut -f1 "$T/out" | tr '\n' ' ')" = "$ANN $BOB "
expect "list takes no ID" 2 "usage: accounts list" "$BIN" accounts list "$ANN" --data-dir "$D"

# ---- keys: list header, revoke once (0), twice (3), unknown (1) ---------------
expect "keys create" 0 "shown only now" "$BIN" keys create --account "$ANN" --data-dir "$D"
KEY=$(tail -n 1 "$T/out")
PREFIX=$(printf %s "$KEY" | cut -c1-17)
expect "keys list" 0 "" "$BIN" keys list --account "$ANN" --data-dir "$D"
check "keys list header" test "$(out_line 1)" = \
    "PREFIX$(tab)CREATED$(tab)LAST_USED$(tab)STATUS$(tab)REVOKED"
check "keys list row" test "$(awk -F'\t' 'NR == 2 {print $1 "|" $3 "|" $4 "|" $5}' "$T/out")" = \
    "$PREFIX|never|active|-"
expect "keys list --no-header" 0 "" "$BIN" keys list --account "$ANN" --no-header --data-dir "$D"
check "keys list without header" test "$(cut -f1 "$T/out")" = "$PREFIX"
expect "keys list, unknown account" 1 "no account 'usr_nope'" \
    "$BIN" keys list --account usr_nope --data-dir "$D"
expect "keys revoke" 0 "" "$BIN" keys revoke "$KEY" --data-dir "$D"
check "revoke names the key" grep -q "revoked $PREFIX" "$T/out"
expect "keys revoke again" 3 "already revoked on [0-9]{4}-[0-9]{2}-[0-9]{2}T" \
    "$BIN" keys revoke "$PREFIX" --data-dir "$D"
expect "keys revoke unknown" 1 "no key matches 'bgr_live_zzzzzzzz'" \
    "$BIN" keys revoke bgr_live_zzzzzzzz --data-dir "$D"
expect "keys list shows the revocation" 0 "" "$BIN" keys list --account "$ANN" --data-dir "$D"
check "revoked row" test "$(awk -F'\t' 'NR == 2 {print $4}' "$T/out")" = revoked

# ---- credits: balance, add, subtract (never below 0), set ------------------------
expect "credits" 0 "" "$BIN" accounts credits "$ANN" --data-dir "$D"
check "credits balance" grep -Eq "^remaining +1000$" "$T/out"
expect "credits --add" 0 "" "$BIN" accounts credits "$ANN" --add 25 --data-dir "$D"
check "added" grep -Eq "^total +1025$" "$T/out"
expect "credits --subtract too many" 1 "cannot subtract 2000 credits: $ANN has 1025 left" \
    "$BIN" accounts credits "$ANN" --subtract 2000 --data-dir "$D"
expect "credits --set" 0 "" "$BIN" accounts credits "$ANN" --set 3 --data-dir "$D"
check "set" grep -Eq "^remaining +3$" "$T/out"
expect "credits --subtract" 0 "" "$BIN" accounts credits "$ANN" --subtract 3 --data-dir "$D"
check "subtracted to 0" grep -Eq "^remaining +0$" "$T/out"
expect "credits --add negative" 2 "--add: '-1'" \
    "$BIN" accounts credits "$ANN" --add -1 --data-dir "$D"
expect "credits, two changes" 2 "one of --add" \
    "$BIN" accounts credits "$ANN" --add 1 --set 2 --data-dir "$D"
expect "credits, unknown account" 1 "no account" "$BIN" accounts credits usr_nope --data-dir "$D"
expect "enterprise" 0 "" "$BIN" accounts create --email ent@example.com --plan enterprise \
    --data-dir "$D"
ENT=$(out_line 1)
expect "credits on an unlimited plan" 1 "unlimited credits" \
    "$BIN" accounts credits "$ENT" --add 5 --data-dir "$D"

# ---- show and delete --------------------------------------------------------------
expect "show" 0 "" "$BIN" accounts show "$ANN" --data-dir "$D"
check "show counts the keys" grep -Eq "^keys +1 \(0 active\)$" "$T/out"
expect "delete without --yes (no terminal)" 2 "needs --yes.*nothing was deleted" \
    "$BIN" accounts delete "$ANN" --data-dir "$D"
check "delete lists what the account holds" grep -Eq "^keys +1 \(0 active\)" "$T/err"
expect "still there" 0 "" "$BIN" accounts show "$ANN" --data-dir "$D"
expect "delete --yes" 0 "" "$BIN" accounts delete "$ANN" --yes --data-dir "$D"
check "delete says what it removed" grep -q "deleted $ANN (Ann@Example.com): 1 keys" "$T/out"
expect "gone" 1 "no account '$ANN'" "$BIN" accounts show "$ANN" --data-dir "$D"
expect "delete twice" 1 "no account '$ANN'" "$BIN" accounts delete "$ANN" --yes --data-dir "$D"
expect "the e-mail is free again" 0 "" \
    "$BIN" accounts create --email ann@example.com --plan free --data-dir "$D"

# on a terminal (script(1) gives it one) delete asks for the account id
if command -v script >/dev/null; then
    expect "account for the prompt" 0 "" "$BIN" accounts create --email tty@example.com \
        --plan free --data-dir "$D"
    TTY=$(out_line 1)
    printf 'no\n' | script -qec "'$BIN' accounts delete $TTY --data-dir '$D'" /dev/null \
        >"$T/out" 2>&1
    check "a wrong answer deletes nothing" sh -c "grep -q 'Type the account id' '$T/out' &&
        grep -q 'not confirmed; nothing was deleted' '$T/out' &&
        '$BIN' accounts show $TTY --data-dir '$D' >/dev/null 2>&1"
    printf '%s\n' "$TTY" | script -qec "'$BIN' accounts delete $TTY --data-dir '$D'" /dev/null \
        >"$T/out" 2>&1
    check "typing the id deletes" sh -c "grep -q 'deleted $TTY' '$T/out' &&
        ! '$BIN' accounts show $TTY --data-dir '$D' >/dev/null 2>&1"
fi

# ---- version: oneDNN's real build information ----------------------------------------
expect "version" 0 "" "$BIN" version
check "oneDNN line" grep -Eq "^oneDNN [0-9]+\.[0-9]+\.[0-9]+ \(.* runtime, .* on this CPU" "$T/out"
check "no N/A" sh -c "! grep -q 'N/A' '$T/out'"

# ---- serve: start-up (needs the model) ------------------------------------------------
if ! "$BIN" models path medium >/dev/null 2>"$T/err"; then
    bad "model installed" "$(cat "$T/err") - run 'build/bgremover models install' (make test does)"
else
    mkdir -p "$T/notempty"
    echo x >"$T/notempty/notes.txt"
    expect "serve refuses a non-empty dir without a store" 1 \
        "$T/notempty holds no bgremover store.*--init" \
        timeout 60 "$BIN" serve --listen 127.0.0.1:0 --data-dir "$T/notempty"
    check "nothing created there" test ! -e "$T/notempty/bgremover.db"

    # port 0: the printed URL has the port actually bound, and answers
    "$BIN" serve --listen 127.0.0.1:0 --data-dir "$T/served" >"$T/serve.out" 2>"$T/serve.err" &
    SERVE_PID=$!
    i=0
    while [ $i -lt 100 ] && ! grep -q "serving on" "$T/serve.out" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    URL=$(sed -n 's/^bgremover: serving on \([^ ]*\) .*/\1/p' "$T/serve.out")
    PORT=${URL##*:}
    check "printed URL has the bound port" sh -c "[ -n '$PORT' ] && [ '$PORT' -gt 0 ] &&
        grep -q '(port $PORT)' '$T/serve.out'"
    check "a new directory gets a store" grep -q "created a new, empty store in $T/served" \
        "$T/serve.err"
    if command -v curl >/dev/null; then
        check "the printed URL answers" sh -c "curl -sf '$URL/healthz' | grep -q ok"
    fi
    # the same port again: the real reason, not a list of guesses
    if [ -n "$PORT" ] && [ "$PORT" -gt 0 ]; then
        expect "address in use" 1 "cannot serve on 127.0.0.1:$PORT: Address already in use" \
            timeout 60 "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$T/served"
    else
        bad "address in use" "no port to try"
    fi
    kill "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
