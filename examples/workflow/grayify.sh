#!/bin/sh
# OSCAR's contract: the input is $INPUT_FILE_PATH; whatever lands in $TMP_OUTPUT_DIR is uploaded.
set -e
name=$(basename "$INPUT_FILE_PATH")
echo "grayify: $STORAGE_OBJECT_KEY (job $JOB_UUID)"
convert "$INPUT_FILE_PATH" -colorspace Gray "$TMP_OUTPUT_DIR/$name"
