"""Uploads files through Mizuchi with boto3, as an application would.

Driven by environment variables (set by the Go end-to-end test):
  MZ_ENDPOINT    http(s)://127.0.0.1:PORT
  MZ_BUCKET      the Mizuchi bucket (its path prefix)
  MZ_ACCESS_KEY, MZ_SECRET_KEY
  MZ_CA_BUNDLE   CA certificate for HTTPS (empty over HTTP)
  MZ_UPLOADS     "key=path" pairs separated by ';'
Small files go through put_object, larger ones through upload_file with
5 MiB parts (the managed multipart transfer).
"""

import os
import sys

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1024 * 1024


def main():
    verify = os.environ.get("MZ_CA_BUNDLE") or None
    client = boto3.client(
        "s3",
        endpoint_url=os.environ["MZ_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["MZ_ACCESS_KEY"],
        aws_secret_access_key=os.environ["MZ_SECRET_KEY"],
        verify=verify,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            signature_version="s3v4",
        ),
    )
    transfer = TransferConfig(
        multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=2
    )
    bucket = os.environ["MZ_BUCKET"]
    print("boto3", boto3.__version__, "botocore", botocore.__version__, file=sys.stderr)
    for pair in os.environ["MZ_UPLOADS"].split(";"):
        key, path = pair.split("=", 1)
        if os.path.getsize(path) < 5 * MIB:
            with open(path, "rb") as f:
                resp = client.put_object(Bucket=bucket, Key=key, Body=f)
            print("put_object", key, resp["ETag"], file=sys.stderr)
        else:
            client.upload_file(path, bucket, key, Config=transfer)
            print("upload_file", key, file=sys.stderr)


if __name__ == "__main__":
    main()
