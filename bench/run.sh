#!/bin/sh
# floodgate vs nginx benchmark; see bench/README.md. Arguments go to bench/run.py.
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
