#!/usr/bin/env bash
# Run a command with each KEY=value line of an env file exported, so `ray start` and every Ray process it starts
# inherit them. Values are literal (no quotes, no $expansion), as in `kubectl create secret --from-env-file`; `#`
# lines and blank lines are skipped; a missing file is no error (every key is optional). A bad line is reported by
# its number only: its value may be a secret.
#   with_env.sh FILE COMMAND [ARG...]
set -euo pipefail
file=$1
shift
if [ -f "$file" ]; then
    number=0
    while IFS= read -r line || [ -n "$line" ]; do
        number=$((number + 1))
        line=${line%$'\r'}
        case "$line" in "" | "#"*) continue ;; esac
        key=${line%%=*}
        if [ "$key" = "$line" ] || ! [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
            echo "with_env.sh: $file line $number: not KEY=value, skipped" >&2
            continue
        fi
        export "$key=${line#*=}"
    done <"$file"
fi
exec "$@"
