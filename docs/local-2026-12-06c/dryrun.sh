#!/bin/bash
# Stop 46: the dry-run estimate of the fisher+mix slice on an idle machine (measured: 5 min 40 s).
cd /work/main && . /work/env.sh
date
.venv/bin/andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --basis fisher --cal-data mix -o /tmp/dr --dry-run --format json
.venv/bin/andactl slice smollm2-135m --ratio 0.25 --cal-samples 16 --cal-seqlen 1024 --cal-data mix -o /tmp/dr --dry-run --format json
