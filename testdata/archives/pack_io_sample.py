#!/usr/bin/env python3
"""Packs the Insights Operator sample archive directory into io-sample.tar.gz, deterministically.

Usage (from the repo root):
    python3 testdata/archives/pack_io_sample.py [SRC] [OUT]

SRC defaults to ../shared/insights-archive-sample, OUT to testdata/archives/io-sample.tar.gz.
Regular files only, sorted by path, mode 0644, uid/gid 0, no owner names, every mtime
2024-02-21T13:51:13Z (the sample's InsightsOperator status.lastGatherTime), PAX format as the
Insights Operator's Go archive/tar writes, gzip header without name or mtime. Two runs give
byte-identical output. Uses only the Python 3 standard library.
"""

import gzip
import io
import os
import sys
import tarfile

MTIME = 1708523473  # 2024-02-21T13:51:13Z


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "insights-archive-sample")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "io-sample.tar.gz")
    files = []
    for dirpath, _dirs, names in os.walk(src):
        for name in names:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                files.append(os.path.relpath(full, src).replace(os.sep, "/"))
    files.sort()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            with open(os.path.join(src, rel), "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with open(out, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as gz:
            gz.write(buf.getvalue())
    print(f"{out}: {len(files)} records, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
