#!/bin/sh
# floodgate function-path benchmark; see bench/README.md. Arguments go to bench/functions.py.
exec /usr/bin/python3 "$(dirname "$0")/functions.py" "$@"
