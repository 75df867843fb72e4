#!/bin/sh
# bucket notification delivery benchmark; see bench/README.md. Arguments go to bench/notifications.py.
exec /usr/bin/python3 "$(dirname "$0")/notifications.py" "$@"
