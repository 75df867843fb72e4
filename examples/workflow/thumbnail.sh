#!/bin/sh
set -e
name=$(basename "$INPUT_FILE_PATH")
echo "thumbnail: $STORAGE_OBJECT_KEY -> ${THUMB_SIZE}"
convert "$INPUT_FILE_PATH" -thumbnail "${THUMB_SIZE:-128x128}" "$TMP_OUTPUT_DIR/thumb-$name"
