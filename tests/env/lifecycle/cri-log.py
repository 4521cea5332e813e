#!/usr/bin/env python3
"""Copies stdin to a file in the CRI log format kwok serves pod logs from
(`<RFC3339Nano> <stream> F <line>`), so a process running on the host can stand behind a pod's
log in the cluster. Usage: cri-log.py FILE [STREAM]"""
import datetime
import sys

path = sys.argv[1]
stream = sys.argv[2] if len(sys.argv) > 2 else "stderr"
with open(path, "a", encoding="utf-8", errors="replace") as out:
    for line in iter(sys.stdin.readline, ""):
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        out.write(f"{stamp} {stream} F {line.rstrip(chr(10))}\n")
        out.flush()
