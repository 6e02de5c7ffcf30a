#!/usr/bin/env sh
# Make an S3 (or S3-compatible) bucket this checkout's default DVC remote, named "s3".
#
#   CLEARMARK_DVC_S3_URL=s3://<bucket>/<prefix> [CLEARMARK_DVC_S3_ENDPOINT=https://host:port] \
#       deploy/dvc-remote-s3.sh
#
# Bucket and endpoint come from the environment and go to .dvc/config.local, which git ignores;
# the committed .dvc/config keeps the offline folder remote "local". Credentials are never
# written anywhere: DVC's S3 client reads them from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
# AWS_PROFILE or an instance role, as every AWS client does. Without an endpoint, AWS S3 itself.
set -eu
: "${CLEARMARK_DVC_S3_URL:?set CLEARMARK_DVC_S3_URL=s3://<bucket>/<prefix>}"
case "$CLEARMARK_DVC_S3_URL" in
    s3://?*) ;;
    *) echo "CLEARMARK_DVC_S3_URL must start with s3://, got: $CLEARMARK_DVC_S3_URL" >&2; exit 2 ;;
esac
dvc="${DVC:-dvc}"
"$dvc" remote add --local --force --default s3 "$CLEARMARK_DVC_S3_URL"
if [ -n "${CLEARMARK_DVC_S3_ENDPOINT:-}" ]; then
    "$dvc" remote modify --local s3 endpointurl "$CLEARMARK_DVC_S3_ENDPOINT"
fi
echo "DVC remote s3 -> $CLEARMARK_DVC_S3_URL${CLEARMARK_DVC_S3_ENDPOINT:+ at $CLEARMARK_DVC_S3_ENDPOINT} (default, in .dvc/config.local)"
